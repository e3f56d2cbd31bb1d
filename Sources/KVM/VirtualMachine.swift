import CKVM
import Glibc

/// One KVM virtual machine: memory slots and vCPUs.
public final class VirtualMachine: @unchecked Sendable {
    let fd: OwnedFileDescriptor
    let hypervisor: Hypervisor
    /// Guest memory kept alive as long as KVM may touch it.
    private var memories: [GuestMemory] = []
    /// The eventfds its doorbells signal and its interrupts come from, kept open as long as KVM holds them.
    private var heldEvents: [EventNotifier] = []

    init(fd: OwnedFileDescriptor, hypervisor: Hypervisor) {
        self.fd = fd
        self.hypervisor = hypervisor
    }

    /// Maps `length` bytes of `memory` starting at `offset` to guest-physical `guestAddress`
    /// as memory slot `slot` (KVM_SET_USER_MEMORY_REGION).
    public func mapMemory(
        slot: UInt32, guestAddress: UInt64, memory: GuestMemory, offset: UInt64 = 0, length: UInt64? = nil,
        readOnly: Bool = false
    ) throws(KVMError) {
        let length = length ?? memory.size - offset
        guard let host = memory.pointer(at: offset, length: length) else {
            throw KVMError.addressOutOfRange(offset, length: length)
        }
        var region = kvm_userspace_memory_region(
            slot: slot, flags: readOnly ? UInt32(KVM_MEM_READONLY) : 0,
            guest_phys_addr: guestAddress, memory_size: length,
            userspace_addr: UInt64(UInt(bitPattern: host)))
        _ = try ioctl(
            fd, CKVM_SET_USER_MEMORY_REGION, &region,
            name: "KVM_SET_USER_MEMORY_REGION (slot \(slot) at 0x\(String(guestAddress, radix: 16)))")
        memories.append(memory)
    }

    /// Makes an 8-byte store to guest-physical `address` signal `event` inside the kernel
    /// (KVM_IOEVENTFD, MMIO, any value): a doorbell, with no exit to the monitor. A store of
    /// another size there still exits, as an MMIO write.
    public func addDoorbell(at address: UInt64, signalling event: EventNotifier) throws(KVMError) {
        var doorbell = kvm_ioeventfd()
        doorbell.addr = address
        doorbell.len = 8
        doorbell.fd = event.fd.rawValue
        _ = try ioctl(
            fd, CKVM_IOEVENTFD, &doorbell, name: "KVM_IOEVENTFD (a doorbell at 0x\(String(address, radix: 16)))")
        keepOpen(event)
    }

    /// Keeps `event` open for as long as the VM: KVM holds it.
    func keepOpen(_ event: EventNotifier) { heldEvents.append(event) }

    /// Creates vCPU `index` (KVM_CREATE_VCPU), maps its `kvm_run` and gives it KVM's supported CPUID.
    public func createVCPU(index: UInt32 = 0) throws(KVMError) -> VCPU {
        let vcpuFD = OwnedFileDescriptor(try ioctl(fd, CKVM_CREATE_VCPU, UInt(index), name: "KVM_CREATE_VCPU"))
        let vcpu = try VCPU(fd: vcpuFD, mmapSize: hypervisor.vcpuMmapSize, virtualMachine: self)
        try vcpu.setCPUID(hypervisor.supportedCPUID)
        return vcpu
    }
}
