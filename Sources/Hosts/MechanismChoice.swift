import GuestImage

/// Which engine enforces each isolation mechanism on a host, from what the host offers.
enum MechanismChoice {
    static let flexosdKVM = "flexosd (KVM)"
    static let flexosdKVMWithPKU = "flexosd (KVM with PKU)"
    static let libvirtKVMWithPKU = "libvirt KVM domain with PKU"
    static let libvirtTCG = "libvirt TCG domain (PKU emulated)"
    static let flexosdQEMU = "flexosd's QEMU engine (TCG, PKU emulated)"

    static func mechanisms(on host: HostDescription) -> [HostDescription.MechanismSupport] {
        Mechanism.allCases.map { mechanism in
            let (engine, reason) = choose(mechanism, on: host)
            return .init(mechanism: mechanism.rawValue, engine: engine, reason: reason)
        }
    }

    private static func choose(_ mechanism: Mechanism, on host: HostDescription) -> (String?, String) {
        guard host.architecture == "x86_64" else {
            return (nil, "image sets are x86-64; this host is \(host.architecture)")
        }
        let isolation = mechanism.isolation
        if isolation.vmPerCompartment { return vmPerCompartment(isolation, on: host) }
        if isolation.needsProtectionKeys { return protectionKeys(isolation, on: host) }
        if host.localKVM { return (flexosdKVM, isolation.summary) }
        let types = Set(host.hypervisors.map(\.type))
        if types.contains("kvm") || types.contains("qemu") {
            return ("libvirt \(types.contains("kvm") ? "KVM" : "TCG") domain", isolation.summary)
        }
        return (nil, "no hypervisor for x86-64 guests")
    }

    /// A VM per compartment sharing memory: only flexosd's own KVM engine sets that up.
    private static func vmPerCompartment(_ isolation: any Isolation, on host: HostDescription) -> (String?, String) {
        if host.localKVM { return (flexosdKVM, isolation.summary) }
        return (
            nil,
            "\(isolation.mechanism.rawValue) needs flexosd on the host (a VM per compartment sharing memory, which libvirt cannot set up)"
                + (isThisMachine(host) ? "; /dev/kvm does not open here" : "")
        )
    }

    /// Protection keys: a KVM with PKU runs it natively, QEMU's TCG by emulation.
    private static func protectionKeys(_ isolation: any Isolation, on host: HostDescription) -> (String?, String) {
        if host.localKVMProtectionKeys { return (flexosdKVMWithPKU, isolation.summary) }
        if host.hypervisors.contains(where: { $0.type == "kvm" && $0.protectionKeys == true }) {
            return (libvirtKVMWithPKU, isolation.summary)
        }
        let withoutKeys =
            host.localKVM || host.hypervisors.contains(where: { $0.type == "kvm" })
            ? "KVM here offers no protection keys"
                + (host.deciding.contains("pku") ? "" : " (the host CPU has no pku)") : "no KVM here"
        if host.hypervisors.contains(where: { $0.type == "qemu" && $0.protectionKeys == true }) {
            let engine = isThisMachine(host) ? flexosdQEMU : libvirtTCG
            return (engine, withoutKeys + "; QEMU's emulation gives PKU, at emulation speed")
        }
        return (nil, withoutKeys + ", and no TCG with PKU")
    }

    /// Whether flexosd beside this flexosctl would run it: the probe, or a URI naming this machine.
    private static func isThisMachine(_ host: HostDescription) -> Bool {
        host.source == .kvmProbe || HostSurvey.isThisMachine(host.uri)
    }
}
