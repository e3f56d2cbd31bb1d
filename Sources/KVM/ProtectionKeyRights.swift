import CKVM

/// PKRU, the protection-key rights register of a vCPU, which KVM keeps in the vCPU's
/// XSAVE state (component 9): set before the first KVM_RUN so that the entry compartment
/// starts with only its own keys open, and read after a fault to name who ran.
extension VCPU {
    /// Bit 9 of XSTATE_BV: the PKRU component is present in the state.
    private static let protectionKeyComponent: UInt64 = 1 << 9
    /// XSTATE_BV, the first word of the XSAVE header.
    private static let stateComponentsOffset = 512

    /// The vCPU's PKRU (KVM_GET_XSAVE2). A state without the PKRU component means 0.
    public func protectionKeyRights() throws(KVMError) -> UInt32 {
        let state = try xsaveState()
        let components = state.withUnsafeBytes {
            $0.loadUnaligned(fromByteOffset: VCPU.stateComponentsOffset, as: UInt64.self)
        }
        guard components & VCPU.protectionKeyComponent != 0 else { return 0 }
        return state.withUnsafeBytes {
            $0.loadUnaligned(fromByteOffset: hypervisor.protectionKeyStateOffset, as: UInt32.self)
        }
    }

    /// Sets the vCPU's PKRU (KVM_SET_XSAVE): the rest of its XSAVE state is kept.
    public func setProtectionKeyRights(_ rights: UInt32) throws(KVMError) {
        var state = try xsaveState()
        let offset = hypervisor.protectionKeyStateOffset
        state.withUnsafeMutableBytes { bytes in
            let components = bytes.loadUnaligned(fromByteOffset: VCPU.stateComponentsOffset, as: UInt64.self)
            bytes.storeBytes(
                of: components | VCPU.protectionKeyComponent, toByteOffset: VCPU.stateComponentsOffset, as: UInt64.self)
            bytes.storeBytes(of: rights, toByteOffset: offset, as: UInt32.self)
        }
        let result = state.withUnsafeMutableBytes {
            ckvm_ioctl(fd.rawValue, CKVM_SET_XSAVE, UInt(bitPattern: $0.baseAddress!))
        }
        if result != 0 { throw KVMError.ioctlFailed("KVM_SET_XSAVE", .current) }
        guard try protectionKeyRights() == rights else {
            throw KVMError.ioctlFailed("KVM_SET_XSAVE (PKRU did not take)", .invalidArgument)
        }
    }

    /// The whole XSAVE state: KVM_GET_XSAVE2 where KVM has it, else KVM_GET_XSAVE.
    private func xsaveState() throws(KVMError) -> [UInt8] {
        let size = hypervisor.xsaveSize
        var state = [UInt8](repeating: 0, count: size)
        let useXSAVE2 = size > MemoryLayout<kvm_xsave>.size
        let request = useXSAVE2 ? CKVM_GET_XSAVE2 : CKVM_GET_XSAVE
        let result = state.withUnsafeMutableBytes {
            ckvm_ioctl(fd.rawValue, request, UInt(bitPattern: $0.baseAddress!))
        }
        if result != 0 { throw KVMError.ioctlFailed(useXSAVE2 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", .current) }
        return state
    }
}
