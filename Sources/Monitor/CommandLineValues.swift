/// Parsing of the sizes and durations users type on command lines.
public enum CommandLineValues {
    /// "64M", "64MiB", "1G", "512K", "4096": bytes. A bare number is bytes.
    public static func byteCount(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(suffix.count)) else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
            return overflow ? nil : bytes
        }
        return UInt64(text)
    }

    /// "10s", "500ms", "2m", "1.5": seconds. A bare number is seconds.
    public static func seconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0, number.isFinite else { return nil }
            return number * scale
        }
        guard let number = Double(text), number > 0, number.isFinite else { return nil }
        return number
    }
}

extension RunReport {
    /// A few lines for a person: how the run ended, how long it took, what it cost in exits.
    public func summary() -> String {
        var lines: [String] = []
        let duration = formatSeconds(wallSeconds)
        switch outcome {
        case "exited": lines.append("\(imageSet) exited with code \(guestExitCode ?? 0) after \(duration)")
        default: lines.append("\(imageSet) \(outcome) after \(duration)")
        }
        if let first = firstHypercallAt {
            lines[0] += " (first hypercall \(formatSeconds(Double(first - launchStartedAt) / 1e9)) after launch)"
        }
        for compartment in compartments {
            let kvm = compartment.kvmExits
            var exits = "\(kvm["exits"] ?? compartment.exits.values.reduce(0, +)) VM exits"
            if !kvm.isEmpty { exits += " (\(kvm["mmio_exits"] ?? 0) MMIO, \(kvm["pf_taken"] ?? 0) page faults, \(kvm["irq_exits"] ?? 0) interrupts)" }
            let calls = compartment.hypercalls.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            lines.append("  \(compartment.name): \(exits); hypercalls: \(calls.isEmpty ? "none" : calls)")
        }
        return lines.joined(separator: "\n")
    }
}
