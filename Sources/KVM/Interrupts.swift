import CKVM
import Glibc

/// Interrupts into a guest without the monitor: KVM's local APIC (the split irqchip, the
/// only one PVM offers), an MSI route, and KVM_IRQFD, which raises that interrupt whenever
/// an eventfd is signalled. With a doorbell (KVM_IOEVENTFD) on the same eventfd, a store in
/// one VM wakes a vCPU halted in another, all inside the kernel.
extension Hypervisor {
    /// Whether KVM can wake a halted vCPU from an eventfd: a split irqchip, KVM_IRQFD and
    /// doorbells to signal it.
    public var offersInterrupts: Bool {
        offersDoorbells && (try? Hypervisor.check(device, CKVM_CAP_SPLIT_IRQCHIP)) ?? 0 > 0
            && (try? Hypervisor.check(device, CKVM_CAP_IRQFD)) ?? 0 > 0
    }

    /// Whether the halt-polling window can be set per VM (KVM_CAP_HALT_POLL).
    var offersHaltPolling: Bool { (try? Hypervisor.check(device, CKVM_CAP_HALT_POLL)) ?? 0 > 0 }
}

extension VirtualMachine {
    /// The GSI of the one interrupt a FlexOS VM takes.
    static let wakeGSI: UInt32 = 0

    /// Gives the VM KVM's local APIC (KVM_CAP_SPLIT_IRQCHIP, no I/O APIC pins). Must come
    /// before the first vCPU.
    public func addLocalAPIC() throws(KVMError) {
        try enable(capability: CKVM_CAP_SPLIT_IRQCHIP, argument: 0, name: "KVM_ENABLE_CAP (KVM_CAP_SPLIT_IRQCHIP)")
    }

    /// How long a halted vCPU polls for its wake before it sleeps (KVM_CAP_HALT_POLL); left
    /// to the host's default where the cap is missing.
    public func setHaltPolling(nanoseconds: UInt64) throws(KVMError) {
        guard hypervisor.offersHaltPolling else { return }
        try enable(capability: CKVM_CAP_HALT_POLL, argument: nanoseconds, name: "KVM_ENABLE_CAP (KVM_CAP_HALT_POLL)")
    }

    /// Raises `vector` at vCPU 0's local APIC whenever `event` is signalled (an MSI route and
    /// KVM_IRQFD). KVM reads the eventfd itself from then on: the monitor must not poll it.
    public func raise(vector: UInt8, whenSignalled event: EventNotifier) throws(KVMError) {
        // An MSI to APIC ID 0: address 0xFEE0_0000, fixed delivery, edge, the vector in the data.
        if ckvm_route_msi(fd.rawValue, VirtualMachine.wakeGSI, 0xFEE0_0000, UInt32(vector)) != 0 {
            throw KVMError.ioctlFailed("KVM_SET_GSI_ROUTING", .current)
        }
        var irqfd = kvm_irqfd()
        irqfd.fd = UInt32(bitPattern: event.fd.rawValue)
        irqfd.gsi = VirtualMachine.wakeGSI
        _ = try ioctl(fd, CKVM_IRQFD, &irqfd, name: "KVM_IRQFD")
        keepOpen(event)
    }

    private func enable(capability: Int32, argument: UInt64, name: String) throws(KVMError) {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(capability)
        cap.args.0 = argument
        _ = try ioctl(fd, CKVM_ENABLE_CAP, &cap, name: name)
    }
}

extension VCPU {
    /// Turns on the vCPU's local APIC in x2APIC mode (MSRs, no MMIO page) with every local
    /// interrupt masked except the timer, which raises `vector` once (one-shot) after as many
    /// nanoseconds as its initial count (KVM's APIC bus runs at 1 GHz; divide by 1).
    /// Spurious interrupts use `vector` too, so the guest needs one handler.
    public func enableLocalAPIC(vector: UInt8) throws(KVMError) {
        let apicBase: UInt32 = 0x1B
        // 0xFEE0_0000 | x2APIC mode | enabled | bootstrap processor.
        if ckvm_set_msr(fd.rawValue, apicBase, 0xFEE0_0000 | (1 << 11) | (1 << 10) | (1 << 8)) != 1 {
            throw KVMError.ioctlFailed("KVM_SET_MSRS (IA32_APIC_BASE, x2APIC)", .current)
        }
        var state = kvm_lapic_state()
        _ = try ioctl(fd, CKVM_GET_LAPIC, &state, name: "KVM_GET_LAPIC")
        withUnsafeMutableBytes(of: &state.regs) { registers in
            let set = { (offset: Int, value: UInt32) in
                registers.storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
            }
            let masked: UInt32 = 1 << 16
            set(0x080, 0)  // task priority: every vector
            set(0x0F0, 0x100 | UInt32(vector))  // spurious vector register: APIC on
            set(0x320, UInt32(vector))  // timer: one-shot
            set(0x3E0, 0xB)  // timer divide configuration: by 1
            set(0x330, masked)  // thermal
            set(0x340, masked)  // performance counters
            set(0x350, masked)  // LINT0
            set(0x360, masked)  // LINT1
            set(0x370, masked)  // error
        }
        _ = try ioctl(fd, CKVM_SET_LAPIC, &state, name: "KVM_SET_LAPIC")
    }
}
