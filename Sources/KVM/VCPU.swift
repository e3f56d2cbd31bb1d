import CKVM
import Glibc

/// One virtual CPU: its registers and its run loop entry (KVM_RUN).
///
/// A vCPU is driven by one thread. `requestImmediateExit()` may be called from any
/// thread; the caller then sends the driving thread a signal so a running KVM_RUN returns.
public final class VCPU: @unchecked Sendable {
    let fd: OwnedFileDescriptor
    private let run: UnsafeMutablePointer<kvm_run>
    private let runSize: Int
    /// Keeps the VM (and its memory) alive while the vCPU exists.
    private let virtualMachine: VirtualMachine
    var hypervisor: Hypervisor { virtualMachine.hypervisor }

    init(fd: OwnedFileDescriptor, mmapSize: Int, virtualMachine: VirtualMachine) throws(KVMError) {
        guard let mapping = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0),
            mapping != MAP_FAILED
        else { throw KVMError.ioctlFailed("mmap of kvm_run", .current) }
        self.fd = fd
        self.runSize = mmapSize
        self.run = mapping.assumingMemoryBound(to: kvm_run.self)
        self.virtualMachine = virtualMachine
    }

    deinit { munmap(run, runSize) }

    /// KVM_SET_CPUID2.
    func setCPUID(_ entries: [kvm_cpuid_entry2]) throws(KVMError) {
        var buffer = CPUIDBuffer(entries: entries)
        let result = buffer.withHeader { ckvm_ioctl(fd.rawValue, CKVM_SET_CPUID2, UInt(bitPattern: $0)) }
        if result != 0 { throw KVMError.ioctlFailed("KVM_SET_CPUID2", .current) }
    }

    /// KVM_GET_REGS.
    public func registers() throws(KVMError) -> kvm_regs {
        var regs = kvm_regs()
        _ = try ioctl(fd, CKVM_GET_REGS, &regs, name: "KVM_GET_REGS")
        return regs
    }

    /// KVM_SET_REGS.
    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var regs = regs
        _ = try ioctl(fd, CKVM_SET_REGS, &regs, name: "KVM_SET_REGS")
    }

    /// KVM_GET_SREGS.
    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var sregs = kvm_sregs()
        _ = try ioctl(fd, CKVM_GET_SREGS, &sregs, name: "KVM_GET_SREGS")
        return sregs
    }

    /// KVM_SET_SREGS.
    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var sregs = sregs
        _ = try ioctl(fd, CKVM_SET_SREGS, &sregs, name: "KVM_SET_SREGS")
    }

    /// Makes the next (or the current, once signalled) KVM_RUN return at once with `.interrupted`.
    public func requestImmediateExit() {
        withUnsafeMutablePointer(to: &run.pointee.immediate_exit) { pointer in
            UnsafeMutableRawPointer(pointer).storeBytes(of: 1, as: UInt8.self)
        }
    }

    /// Runs the guest until its next exit (KVM_RUN).
    public func runUntilExit() throws(KVMError) -> VCPUExit {
        if ckvm_ioctl(fd.rawValue, CKVM_RUN, 0) != 0 {
            let error = Errno.current
            if error == .interrupted { return .interrupted }
            throw KVMError.ioctlFailed("KVM_RUN", error)
        }
        return decodeExit()
    }

    /// Opens this vCPU's binary statistics (KVM_GET_STATS_FD).
    public func statistics() throws(KVMError) -> KVMStatistics {
        let statsFD = try ioctl(fd, CKVM_GET_STATS_FD, 0, name: "KVM_GET_STATS_FD")
        return try KVMStatistics(fd: OwnedFileDescriptor(statsFD))
    }

    private func decodeExit() -> VCPUExit {
        switch Int32(run.pointee.exit_reason) {
        case KVM_EXIT_MMIO:
            let mmio = ckvm_run_mmio(run)
            let length = Int(min(mmio.len, 8))
            let mask: UInt64 = length == 8 ? ~0 : (1 << (8 * UInt64(length))) - 1
            return mmio.is_write != 0
                ? .mmioWrite(address: mmio.phys_addr, value: mmio.data & mask, length: length)
                : .mmioRead(address: mmio.phys_addr, length: length)
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_INTR: return .interrupted
        case KVM_EXIT_HLT: return .halt
        case KVM_EXIT_IO: return .io(port: run.pointee.io.port, isWrite: run.pointee.io.direction == KVM_EXIT_IO_OUT)
        case KVM_EXIT_FAIL_ENTRY: return .failedEntry(reason: ckvm_run_fail_entry_reason(run))
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: ckvm_run_internal_suberror(run))
        default: return .other(reason: run.pointee.exit_reason)
        }
    }
}
