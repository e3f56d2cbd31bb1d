import ControlProtocol

/// Sizes and limits for a launch.
public struct LaunchOptions: Sendable {
    /// Private memory of each compartment (stack and heap).
    public var memory: UInt64 = ImageSetLayout.defaultMemory
    /// The shared area of the image set.
    public var sharedMemory: UInt64 = ImageSetLayout.defaultSharedMemory
    /// Seconds after which the daemon stops it (`flexosd launch` waits with its own timeout).
    public var timeout: Double?
    /// Addresses the network device listens on (only for image sets that have one).
    public var listen: [ListenAddress] = []
    /// Seconds after which the network device closes a connection that neither sends nor
    /// receives (Redis's `timeout`); 0: never.
    public var clientIdleTimeout: Double = LaunchOptions.defaultClientIdleTimeout
    /// The libvirt host to run on (the libvirt engine), e.g. qemu:///system.
    public var connect: String?
    /// Compartments wake each other and the network device through doorbells where KVM
    /// offers them (no exit to the monitor); false: through the wake and kick hypercalls,
    /// the fallback, kept to compare with (`flexosd launch --no-doorbells`).
    public var doorbells = true
    /// A guest with nothing to do halts its vCPU in the kernel, woken by an interrupt its
    /// wake eventfd raises, where KVM offers that; false: it waits in the monitor (the wait
    /// hypercall), kept to compare with (`flexosd launch --no-kernel-sleep`).
    public var sleepInKernel = true
    /// How long KVM polls a halted vCPU for its wake before it really sleeps
    /// (KVM_CAP_HALT_POLL, per VM; 0: never). A wake caught while polling costs about 9 us
    /// for a whole gate round trip here, one that finds the vCPU asleep 41-55 us
    /// (PLATFORM.md); the polling is CPU time of the vCPU thread. KVM shrinks the window
    /// when polls fail. `flexosd launch --halt-polling 200us`.
    public var haltPolling: UInt64 = 200_000
    public static let defaultClientIdleTimeout: Double = 300
    /// Runs on each vCPU thread once it is confined, before the VM first runs: lets the
    /// tests show what the seccomp filter does to a forbidden call.
    package var onConfinedVCPUThread: (@Sendable () -> Void)?

    public init(
        memory: UInt64 = ImageSetLayout.defaultMemory, sharedMemory: UInt64 = ImageSetLayout.defaultSharedMemory,
        timeout: Double? = nil,
        listen: [ListenAddress] = [], clientIdleTimeout: Double = LaunchOptions.defaultClientIdleTimeout
    ) {
        self.memory = memory
        self.sharedMemory = sharedMemory
        self.timeout = timeout
        self.listen = listen
        self.clientIdleTimeout = clientIdleTimeout
    }
}
