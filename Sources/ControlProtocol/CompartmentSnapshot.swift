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

        public init(
            kind: String, section: String? = nil, library: String? = nil, start: UInt64, size: UInt64,
            permissions: String, shared: Bool
        ) {
            self.kind = kind
            self.section = section
            self.library = library
            self.start = start
            self.size = size
            self.permissions = permissions
            self.shared = shared
        }
    }

    /// Gate calls, counted by the guests in the gate block without exits.
    public struct Gates: Codable, Equatable, Sendable {
        public var callsOut: UInt64
        public var callsIn: UInt64
        /// Outgoing calls that were timed (one in 64).
        public var sampledCalls: UInt64
        public var meanNanoseconds: Double?
        public var maxNanoseconds: Double?

        public init(
            callsOut: UInt64, callsIn: UInt64, sampledCalls: UInt64, meanNanoseconds: Double? = nil,
            maxNanoseconds: Double? = nil
        ) {
            self.callsOut = callsOut
            self.callsIn = callsIn
            self.sampledCalls = sampledCalls
            self.meanNanoseconds = meanNanoseconds
            self.maxNanoseconds = maxNanoseconds
        }
    }

    /// Under intel-mpk, a compartment of the VM: the key its pages carry and the PKRU it runs with.
    public struct ProtectionKey: Codable, Equatable, Sendable {
        public var compartment: String
        public var key: UInt8
        /// "0xfffffff0": every key but 0 and its own closed.
        public var pkru: String

        public init(compartment: String, key: UInt8, pkru: String) {
            self.compartment = compartment
            self.key = key
            self.pkru = pkru
        }
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

    public init(
        name: String, compartments: [String], mechanism: String, libraries: [String], hardening: [String: [String]],
        vcpu: VCPUActivity, regions: [Region], privateBytes: UInt64, sharedBytes: UInt64, gates: Gates,
        exits: [String: UInt64], hypercalls: [String: UInt64], kvmStatistics: [String: UInt64], consoleBytes: UInt64,
        network: NetworkReport? = nil, protectionKeys: [ProtectionKey]? = nil
    ) {
        self.name = name
        self.compartments = compartments
        self.mechanism = mechanism
        self.libraries = libraries
        self.hardening = hardening
        self.vcpu = vcpu
        self.regions = regions
        self.privateBytes = privateBytes
        self.sharedBytes = sharedBytes
        self.gates = gates
        self.exits = exits
        self.hypercalls = hypercalls
        self.kvmStatistics = kvmStatistics
        self.consoleBytes = consoleBytes
        self.network = network
        self.protectionKeys = protectionKeys
    }
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

    public init(
        listening: [String], accepted: UInt64, refused: UInt64, closed: UInt64, timedOut: UInt64? = nil,
        bytesReceived: UInt64, bytesSent: UInt64, kicks: UInt64, wakes: UInt64
    ) {
        self.listening = listening
        self.accepted = accepted
        self.refused = refused
        self.closed = closed
        self.timedOut = timedOut
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.kicks = kicks
        self.wakes = wakes
    }
}
