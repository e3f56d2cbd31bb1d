/// Where the console output of an image set goes.
public protocol ConsoleSink: Sendable {
    /// `bytes` the VM `compartment` (number `index`) wrote: whole lines, or a full ring.
    func write(_ bytes: [UInt8], compartment: String, index: Int)
}
