import GuestImage

/// What the monitor found when a guest stopped on a fault: the kind of fault, where it
/// happened (symbol, file:line, backtrace), what it touched and to whom that belongs.
public struct FaultReport: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case pageFault = "page fault"
        case instructionFetch = "instruction fetch from memory that is not executable here"
        case stackOverflow = "stack overflow"
        case heapOverflow = "heap overflow"
        case privilegedInstruction = "privileged instruction"
        case trap = "Swift runtime trap"
        case badHypercall = "bad hypercall"
        case unexpectedExit = "unexpected VM exit"
        case deviceViolation = "device protocol violation"
        case protectionKeyFault = "protection-key fault"
        case gateCheck = "intel-mpk gate check"
        case unknown = "fault"
    }

    /// One frame of the guest's call stack.
    public struct Frame: Codable, Equatable, Sendable {
        public var address: UInt64
        public var function: String
        public var location: String?
    }

    public var compartment: String
    public var kind: Kind
    /// One sentence: what happened.
    public var summary: String
    /// The address the guest touched (CR2 for page faults), if there is one.
    public var address: UInt64?
    /// The region that address belongs to, named for a person, and whether it is mapped here.
    public var addressRegion: String?
    /// The library whose code faulted, if the instruction belongs to one.
    public var library: String?
    public var instructionPointer: UInt64
    public var function: String?
    public var location: String?
    /// How the bad pointer reached the faulting compartment, when a gate call carried it.
    public var gate: String?
    /// Further facts worth a line each (e.g. "skipped its gate: ...").
    public var notes: [String]
    public var backtrace: [Frame]
    /// General registers by name, plus CR2 and RFLAGS.
    public var registers: [String: UInt64]

    /// The report as lines a person reads.
    public func render() -> String {
        var lines = [
            "\(kind == .protectionKeyFault ? "protection-key fault" : "guest fault") in compartment \(compartment): \(summary)"
        ]
        if let address { lines.append("  address:  \(hex(address))" + (addressRegion.map { " (\($0))" } ?? "")) }
        var at = "  at:       \(hex(instructionPointer))"
        if let function { at += " \(function)" }
        if let location { at += " (\(location))" }
        if kind != .deviceViolation { lines.append(at) }
        if let library { lines.append("  library:  \(library)") }
        if let gate { lines.append("  via gate: \(gate)") }
        lines += notes.map { "  note:     \($0)" }
        if !backtrace.isEmpty {
            lines.append("  backtrace:")
            var index = 0
            while index < backtrace.count {
                let frame = backtrace[index]
                var repeats = 1
                while index + repeats < backtrace.count && backtrace[index + repeats] == frame { repeats += 1 }
                lines.append(
                    "    #\(index) \(hex(frame.address)) \(frame.function)" + (frame.location.map { " (\($0))" } ?? "")
                        + (repeats > 1 ? " (and \(repeats - 1) more frames like it)" : ""))
                index += repeats
            }
        }
        guard !registers.isEmpty else { return lines.joined(separator: "\n") }
        lines.append("  registers:")
        let order = [
            "rip", "rsp", "rbp", "rflags", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
            "r13", "r14", "r15", "cr2"
        ]
        for row in stride(from: 0, to: order.count, by: 4) {
            let cells = order[row..<min(row + 4, order.count)].map { name in
                name + String(repeating: " ", count: 7 - name.count) + hex16(registers[name] ?? 0)
            }
            lines.append("    " + cells.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }
}

extension FaultReport {
    /// A guest that broke a device's protocol: found by the device, not at an instruction,
    /// so the report names the device and the field, and has no registers.
    public init(_ violation: DeviceViolation, of device: DeviceKind, compartment: String) {
        self.init(
            compartment: compartment, kind: .deviceViolation, summary: "\(device.description): \(violation)",
            address: violation.address,
            addressRegion: "the \(device.description), mapped only in compartment \(compartment)", library: nil,
            instructionPointer: 0,
            function: nil, location: nil, gate: nil, notes: [], backtrace: [], registers: [:])
    }
}

/// `value` as 16 hexadecimal digits.
package func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
