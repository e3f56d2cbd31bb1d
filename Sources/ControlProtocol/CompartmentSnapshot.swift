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
        /// Times it slept (in the kernel or in the monitor), and the doorbells it rang to wake
        /// others or kick its device: counted by the guest in its gate-block state.
        public var sleeps: UInt64?
        public var doorbellsRung: UInt64?

        public init(
            callsOut: UInt64, callsIn: UInt64, sampledCalls: UInt64, meanNanoseconds: Double? = nil,
            maxNanoseconds: Double? = nil, sleeps: UInt64? = nil, doorbellsRung: UInt64? = nil
        ) {
            self.callsOut = callsOut
            self.callsIn = callsIn
            self.sampledCalls = sampledCalls
            self.meanNanoseconds = meanNanoseconds
            self.maxNanoseconds = maxNanoseconds
            self.sleeps = sleeps
            self.doorbellsRung = doorbellsRung
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

    /// Under intel-mpk on the QEMU engine: the PKRU ring 3 held when it last entered the engine
    /// (a hypercall), and the compartment whose rights those are (nil: none's, e.g. a gate's).
    public struct ObservedRights: Codable, Equatable, Sendable {
        public var pkru: String
        public var compartment: String?

        public init(pkru: String, compartment: String?) {
            self.pkru = pkru
            self.compartment = compartment
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
    /// How it is woken and wakes the others ("doorbells" or "wake hypercalls", and whether
    /// it is "sleeping in the kernel"), and how
    /// often a wait of it ended woken; nil under engines where nothing wakes a VM (QEMU).
    public var notification: String?
    public var woken: UInt64?
    /// The devices of the VM that holds them (the network device); absent for other VMs.
    public var devices: [DeviceReport]?
    /// Under intel-mpk, each compartment's key and PKRU; nil otherwise.
    public var protectionKeys: [ProtectionKey]?
    /// Under intel-mpk, where the engine sees it (QEMU): the rights at the last hypercall.
    public var rightsAtLastHypercall: ObservedRights?

    public init(
        name: String, compartments: [String], mechanism: String, libraries: [String], hardening: [String: [String]],
        vcpu: VCPUActivity, regions: [Region], privateBytes: UInt64, sharedBytes: UInt64, gates: Gates,
        exits: [String: UInt64], hypercalls: [String: UInt64], kvmStatistics: [String: UInt64], consoleBytes: UInt64,
        devices: [DeviceReport]? = nil, protectionKeys: [ProtectionKey]? = nil, notification: String? = nil,
        woken: UInt64? = nil, rightsAtLastHypercall: ObservedRights? = nil
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
        self.devices = devices
        self.protectionKeys = protectionKeys
        self.notification = notification
        self.woken = woken
        self.rightsAtLastHypercall = rightsAtLastHypercall
    }
}

/// What a device did, in its own words: a line for people and counters for scripts and
/// metrics (the network device: connections, bytes, kicks and wakes).
public struct DeviceReport: Codable, Equatable, Sendable {
    /// Its kind's name in library.yaml, e.g. "net".
    public var kind: String
    /// What people call it, e.g. "network device".
    public var description: String
    /// Where clients reach it (the port the kernel picked for port 0); empty for a device
    /// that does not listen.
    public var listening: [String]
    /// What it does and did, as a person reads it, e.g. "listening on 127.0.0.1:6379; 3
    /// connections (1 open, ...)".
    public var summary: String
    /// Its counters by name, e.g. "accepted", "bytesSent".
    public var counters: [String: UInt64]

    public init(kind: String, description: String, listening: [String], summary: String, counters: [String: UInt64]) {
        self.kind = kind
        self.description = description
        self.listening = listening
        self.summary = summary
        self.counters = counters
    }
}
