/// Starts each line of a VM's console output with the name of its compartment, for image
/// sets whose VMs share one output. Keeps, per VM, whether the next byte starts a line.
public struct LinePrefixer: Sendable {
    private let enabled: Bool
    private var atLineStart: [String: Bool] = [:]

    public init(enabled: Bool) { self.enabled = enabled }

    /// `bytes` that the VM of `compartment` wrote, with prefixes where lines start.
    public mutating func prefix(_ bytes: [UInt8], compartment: String) -> [UInt8] {
        guard enabled else { return bytes }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 16)
        var lineStart = atLineStart[compartment] ?? true
        for byte in bytes {
            if lineStart { output += Array("[\(compartment)] ".utf8) }
            output.append(byte)
            lineStart = byte == UInt8(ascii: "\n")
        }
        atLineStart[compartment] = lineStart
        return output
    }
}
