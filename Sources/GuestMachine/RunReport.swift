import ControlProtocol
import GuestImage

/// How an image set's run ended.
public enum RunEnd: Equatable, Sendable {
    case exited(code: Int64, compartment: String)
    case panicked(message: String, location: String?, compartment: String)
    case faulted(FaultReport)
    /// Stopped by the timeout; `locations` says where each VM's vCPU was.
    case timedOut(seconds: Double, locations: [String])
    case stopped(reason: String)
    case failed(message: String)
}

/// Counters of one VM of a run.
public struct CompartmentReport: Codable, Equatable, Sendable {
    public var name: String
    /// Exits KVM handed to the monitor, by reason.
    public var exits: [String: UInt64]
    /// Hypercalls by name.
    public var hypercalls: [String: UInt64]
    /// KVM's own counters for the vCPU (KVM_GET_STATS_FD), every one that is not zero:
    /// `exits` in all, `mmio_exits`, `irq_exits`, `pf_taken` (page faults), ...
    public var kvmStatistics: [String: UInt64]
    /// Console bytes the guest wrote.
    public var consoleBytes: UInt64
    /// How it is woken and wakes the others: "doorbells" (KVM_IOEVENTFD: no exit on the
    /// ringing side) or "wake hypercalls" (an exit each), and ", sleeping in the kernel" when
    /// it halts rather than waits in the monitor; nil where nothing wakes (QEMU).
    public var notification: String?
    /// Waits that ended because it was woken (by a doorbell, a wake hypercall or a device;
    /// sleeping in the kernel, KVM's count of halts ended by an interrupt, the timer's too).
    public var woken: UInt64

    package init(
        name: String, exits: [String: UInt64] = [:], hypercalls: [String: UInt64] = [:],
        kvmStatistics: [String: UInt64] = [:], consoleBytes: UInt64, notification: String? = nil, woken: UInt64 = 0
    ) {
        self.name = name
        self.exits = exits
        self.hypercalls = hypercalls
        self.kvmStatistics = kvmStatistics
        self.consoleBytes = consoleBytes
        self.notification = notification
        self.woken = woken
    }
}

/// What `flexosd launch` reports when an image set ends (and prints with --json).
public struct RunReport: Codable, Equatable, Sendable {
    public var imageSet: String
    /// exited, panicked, faulted, timed out, stopped or failed.
    public var outcome: String
    /// The status flexosd exits with: the guest's code, or 124/134/139/1 (see `exitStatus`).
    public var exitStatus: Int32
    public var guestExitCode: Int64?
    public var message: String?
    public var fault: FaultReport?
    public var wallSeconds: Double
    /// CLOCK_MONOTONIC nanoseconds: when the launch began, the first hypercall of any
    /// compartment arrived, and the run ended.
    public var launchStartedAt: UInt64
    public var firstHypercallAt: UInt64?
    public var endedAt: UInt64
    public var compartments: [CompartmentReport]
    /// What its devices did (the network device's connections and bytes), as they ended.
    public var devices: [DeviceReport] = []

    /// The process exit status for an end: the guest's own code when it exited, else the
    /// conventions of timeout(1) and of signals: 124 timed out, 134 panicked, 139 faulted.
    public static func exitStatus(for end: RunEnd) -> Int32 {
        switch end {
        case .exited(let code, _): return Int32(truncatingIfNeeded: code & 0xFF)
        case .timedOut: return 124
        case .panicked: return 134
        case .faulted: return 139
        case .stopped: return 143
        case .failed: return 1
        }
    }

    package init(
        imageSet: String, end: RunEnd, startedAt: UInt64, firstHypercallAt: UInt64?, endedAt: UInt64,
        compartments: [CompartmentReport]
    ) {
        self.imageSet = imageSet
        self.exitStatus = RunReport.exitStatus(for: end)
        self.launchStartedAt = startedAt
        self.firstHypercallAt = firstHypercallAt
        self.endedAt = endedAt
        self.wallSeconds = Double(endedAt - startedAt) / 1e9
        self.compartments = compartments
        switch end {
        case .exited(let code, _):
            outcome = "exited"
            guestExitCode = code
        case .panicked(let message, let location, let compartment):
            outcome = "panicked"
            self.message =
                "guest panic in compartment \(compartment): \(message)" + (location.map { " (at \($0))" } ?? "")
        case .faulted(let report):
            outcome = "faulted"
            fault = report
            message = report.render()
        case .timedOut(let seconds, let locations):
            outcome = "timed out"
            message =
                (["the guest did not exit within \(formatSeconds(seconds)) and was stopped (--timeout)"]
                + locations.map { "  " + $0 }).joined(separator: "\n")
        case .stopped(let reason):
            outcome = "stopped"
            message = reason
        case .failed(let text):
            outcome = "failed"
            message = text
        }
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
        for device in devices { lines.append("  \(device.description): \(device.summary)") }
        for compartment in compartments {
            let kvm = compartment.kvmStatistics
            var exits = "\(kvm["exits"] ?? compartment.exits.values.reduce(0, +)) VM exits"
            if !kvm.isEmpty {
                exits +=
                    " (\(kvm["mmio_exits"] ?? 0) MMIO, \(kvm["pf_taken"] ?? 0) page faults, \(kvm["irq_exits"] ?? 0) interrupts)"
            }
            let calls = compartment.hypercalls.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                separator: ", ")
            let notified = compartment.notification.map { "; woken \(compartment.woken) times (\($0))" } ?? ""
            lines.append("  \(compartment.name): \(exits); hypercalls: \(calls.isEmpty ? "none" : calls)\(notified)")
        }
        return lines.joined(separator: "\n")
    }
}

/// "1.5 s", "4.7 ms", "850 ns": a duration for a person.
public func formatSeconds(_ seconds: Double) -> String {
    if seconds >= 1 { return "\(Double(Int(seconds * 100)) / 100) s" }
    if seconds >= 0.001 { return "\(Double(Int(seconds * 10_000)) / 10) ms" }
    if seconds >= 0.000_001 { return "\(Double(Int(seconds * 10_000_000)) / 10) µs" }
    return "\(Int(seconds * 1e9)) ns"
}
