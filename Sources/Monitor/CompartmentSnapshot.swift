import GuestImage
import NetworkDevice

/// What `flexosctl inspect compartments` shows of one VM of an image set.
public struct CompartmentSnapshot: Codable, Equatable, Sendable {
    public struct Region: Codable, Equatable, Sendable {
        public var kind: String
        /// The section, e.g. ".text.flexosexample", where there is one.
        public var section: String?
        public var library: String?
        public var start: UInt64
        public var size: UInt64
        public var permissions: String
        public var shared: Bool
    }

    /// Gate calls, counted by the guests in the gate block without exits.
    public struct Gates: Codable, Equatable, Sendable {
        public var callsOut: UInt64
        public var callsIn: UInt64
        /// Outgoing calls that were timed (one in 64).
        public var sampledCalls: UInt64
        public var meanNanoseconds: Double?
        public var maxNanoseconds: Double?
    }

    /// Under intel-mpk, a compartment of the VM: the key its pages carry and the PKRU it runs with.
    public struct ProtectionKey: Codable, Equatable, Sendable {
        public var compartment: String
        public var key: UInt8
        /// "0xfffffff0": every key but 0 and its own closed.
        public var pkru: String
    }

    public var name: String
    /// The conformation's compartments this VM runs (several under fcalls).
    public var compartments: [String]
    public var mechanism: String
    public var libraries: [String]
    /// The hardening of each compartment it runs, by compartment.
    public var hardening: [String: [String]]
    public var vcpu: VCPUActivity
    public var regions: [Region]
    public var privateBytes: UInt64
    public var sharedBytes: UInt64
    public var gates: Gates
    /// Exits the monitor handled, by reason; hypercalls by name; KVM's own nonzero counters.
    public var exits: [String: UInt64]
    public var hypercalls: [String: UInt64]
    public var kvmStatistics: [String: UInt64]
    public var consoleBytes: UInt64
    /// The network device, in the VM that holds it.
    public var network: NetworkReport?
    /// Under intel-mpk, each compartment's key and PKRU; nil otherwise.
    public var protectionKeys: [ProtectionKey]?
}

/// What the network device did: connections, bytes, and how often either side slept.
public struct NetworkReport: Codable, Equatable, Sendable {
    /// The addresses it listens on (the port the kernel picked for port 0).
    public var listening: [String]
    public var accepted: UInt64
    /// Clients turned away because every connection slot was taken.
    public var refused: UInt64
    public var closed: UInt64
    /// Connections closed for making no progress within the idle timeout.
    public var timedOut: UInt64?
    public var bytesReceived: UInt64
    public var bytesSent: UInt64
    /// Kick hypercalls from the guest (one VM exit each) and wakes of its vCPU.
    public var kicks: UInt64
    public var wakes: UInt64

    init(_ device: NetworkDevice) {
        let statistics = device.statistics
        listening = device.listeners.map(\.boundAddress.description)
        accepted = statistics.accepted.load(ordering: .relaxed)
        refused = statistics.refused.load(ordering: .relaxed)
        closed = statistics.closed.load(ordering: .relaxed)
        timedOut = statistics.timedOut.load(ordering: .relaxed)
        bytesReceived = statistics.bytesReceived.load(ordering: .relaxed)
        bytesSent = statistics.bytesSent.load(ordering: .relaxed)
        kicks = statistics.kicks.load(ordering: .relaxed)
        wakes = statistics.wakes.load(ordering: .relaxed)
    }
}

extension ImageSetRun {
    /// The state of every VM of the set, now.
    public func inspect() -> [CompartmentSnapshot] {
        zip(layout.compartments, runnerReports()).map { machine, runner in
            CompartmentSnapshot(
                machine: machine, manifest: imageSet.manifest, activity: runner.activity, gates: runner.gates,
                report: runner.report,
                network: machine.index == layout.networkMachine ? network.map(NetworkReport.init) : nil)
        }
    }
}

extension CompartmentSnapshot {
    /// No gate call counted (an engine that cannot read the gate block while it runs).
    package static let noGates = Gates(
        callsOut: 0, callsIn: 0, sampledCalls: 0, meanNanoseconds: nil, maxNanoseconds: nil)

    /// What `machine` of an image set looks like: its regions, libraries, hardening and
    /// keys from the layout, and what its engine counted.
    package init(
        machine: ImageSetLayout.Compartment, manifest: ImageManifest, activity: VCPUActivity, gates: Gates,
        report: CompartmentReport, network: NetworkReport?
    ) {
        let regions = machine.mapped.filter { $0.kind != .hypercallWindow }.map { region in
            Region(
                kind: region.kind.rawValue, section: region.detail, library: region.library,
                start: region.range.lowerBound,
                size: region.size, permissions: region.permissions.description, shared: region.isShared)
        }
        let members = manifest.compartments.filter { machine.members.contains($0.name) }
        self.init(
            name: machine.name, compartments: machine.members, mechanism: manifest.mechanism.rawValue,
            libraries: manifest.libraries.filter { machine.members.contains($0.compartment) }.map(\.name),
            hardening: Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.hardening) }),
            vcpu: activity, regions: regions,
            privateBytes: regions.filter { !$0.shared }.map(\.size).reduce(0, +),
            sharedBytes: regions.filter(\.shared).map(\.size).reduce(0, +),
            gates: gates, exits: report.exits, hypercalls: report.hypercalls,
            kvmStatistics: report.kvmStatistics, consoleBytes: report.consoleBytes, network: network,
            protectionKeys: machine.keyed.isEmpty
                ? nil
                : machine.keyed.map {
                    ProtectionKey(compartment: $0.name, key: $0.key, pkru: hex(UInt64($0.pkru)))
                })
    }
}
