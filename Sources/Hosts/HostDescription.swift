/// One host as FlexOS judges it: what its CPU and hypervisors offer, and so which
/// isolation mechanisms it can enforce, with which engine.
public struct HostDescription: Codable, Sendable, Equatable {
    /// Where the description comes from.
    public enum Source: String, Codable, Sendable {
        /// libvirt's capabilities of the host.
        case libvirt
        /// flexosd's own probe of this machine's /dev/kvm (no libvirtd answered).
        case kvmProbe = "kvm-probe"
    }

    /// A kind of domain the host runs for x86-64 guests.
    public struct Hypervisor: Codable, Sendable, Equatable {
        /// libvirt's domain type: `kvm`, or `qemu` (TCG, QEMU's emulation).
        public var type: String
        /// Whether a guest of this type can be given protection keys (PKU); nil when the
        /// host would not say.
        public var protectionKeys: Bool?
    }

    /// What the host offers a mechanism: the engine that enforces it there, or why none can.
    public struct MechanismSupport: Codable, Sendable, Equatable {
        public var mechanism: String
        public var engine: String?
        public var reason: String
    }

    public var uri: String
    public var source: Source
    /// Why the fallback was taken, when it was.
    public var note: String?
    public var hostname: String?
    public var architecture: String
    public var cpuModel: String?
    public var cpuVendor: String?
    /// The CPU features that decide mechanisms, of those the host's CPU has (pku, vmx, svm,
    /// npt, ept).
    public var deciding: [String]
    public var memoryBytes: UInt64
    public var cpus: Int
    /// Whether flexosd can run here with its own KVM engine: the host is this machine and
    /// /dev/kvm opens.
    public var localKVM: Bool
    /// Whether that KVM offers protection keys to guests.
    public var localKVMProtectionKeys: Bool
    public var hypervisors: [Hypervisor]
    public var mechanisms: [MechanismSupport] = []

    /// The CPU features whose presence changes what FlexOS can enforce.
    static let decidingFeatures = ["pku", "vmx", "svm", "npt", "ept"]
}
