/// One image set as the daemon lists it.
public struct ImageSetStatus: Codable, Equatable, Sendable {
    public var name: String
    public var path: String
    public var mechanism: String
    /// What runs it (kvm, qemu), and why that one when the launch did not say.
    public var engine: String?
    public var engineReason: String?
    /// The libvirt host it runs on (engine libvirt).
    public var host: String?
    public var compartments: [String]
    /// "running" while it runs, then its outcome: exited, panicked, faulted, stopped, ...
    public var state: String
    public var exitStatus: Int32?
    public var message: String?
    /// Seconds since 1970 when it was launched.
    public var launchedAt: Double
    /// How long it has run (so far, or in all).
    public var seconds: Double
    /// CLOCK_MONOTONIC nanoseconds when the daemon began launching it, and when its first
    /// console output arrived (for benchmarks on the same machine).
    public var launchStartedAt: UInt64?
    public var firstOutputAt: UInt64?
    /// Where its network device listens, while it runs.
    public var listening: [String]?

    public init(
        name: String, path: String, mechanism: String, engine: String? = nil, engineReason: String? = nil,
        host: String? = nil, compartments: [String], state: String, exitStatus: Int32? = nil, message: String? = nil,
        launchedAt: Double, seconds: Double, launchStartedAt: UInt64? = nil, firstOutputAt: UInt64? = nil,
        listening: [String]? = nil
    ) {
        self.name = name
        self.path = path
        self.mechanism = mechanism
        self.engine = engine
        self.engineReason = engineReason
        self.host = host
        self.compartments = compartments
        self.state = state
        self.exitStatus = exitStatus
        self.message = message
        self.launchedAt = launchedAt
        self.seconds = seconds
        self.launchStartedAt = launchStartedAt
        self.firstOutputAt = firstOutputAt
        self.listening = listening
    }
}
