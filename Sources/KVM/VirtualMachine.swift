import CKVM
import Glibc

/// One KVM virtual machine: memory slots and vCPUs.
public final class VirtualMachine: @unchecked Sendable {
    let fd: OwnedFileDescriptor
    let hypervisor: Hypervisor
    /// Guest memory kept alive as long as KVM may touch it.
    private var memories: [GuestMemory] = []

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

    /// Creates vCPU `index` (KVM_CREATE_VCPU), maps its `kvm_run` and gives it KVM's supported CPUID.
    public func createVCPU(index: UInt32 = 0) throws(KVMError) -> VCPU {
        let vcpuFD = OwnedFileDescriptor(try ioctl(fd, CKVM_CREATE_VCPU, UInt(index), name: "KVM_CREATE_VCPU"))
        let vcpu = try VCPU(fd: vcpuFD, mmapSize: hypervisor.vcpuMmapSize, virtualMachine: self)
        try vcpu.setCPUID(hypervisor.supportedCPUID)
        return vcpu
    }
}
