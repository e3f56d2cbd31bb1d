/// What runs an image set.
public enum EngineKind: String, Codable, Sendable, CaseIterable {
    /// flexosd's own VMM on /dev/kvm: every mechanism, the network device.
    case kvm
    /// qemu-system-x86_64 under TCG with `-cpu max`: emulated and slow, but with
    /// protection keys on any host; single-VM image sets without a network device.
    case qemu
    /// The QEMU engine's emulation as a transient domain of a libvirt host (`--connect URI`).
    case libvirt
}
