/// An exception as the CPU delivered it: what a fault report is made from when the
/// engine caught it (the KVM engine's exception entry, the QEMU engine's shim) rather
/// than inferred it from a vCPU stopped by a triple fault.
package struct CPUException: Sendable, Equatable {
    package let vector: UInt64
    package let errorCode: UInt64
    /// PKRU when it happened, where the VM's compartments have keys (intel-mpk).
    package let protectionKeyRights: UInt32?
    /// Whether it came from ring 3, the guest's own code (not the engine's ring 0).
    package let fromUserMode: Bool

    package init(vector: UInt64, errorCode: UInt64, protectionKeyRights: UInt32?, fromUserMode: Bool = true) {
        self.vector = vector
        self.errorCode = errorCode
        self.protectionKeyRights = protectionKeyRights
        self.fromUserMode = fromUserMode
    }

    package var isPageFault: Bool { vector == 14 }
    /// A page fault whose error code has the PK bit: the page's key, not its mapping, refused.
    package var isProtectionKeyFault: Bool { isPageFault && errorCode & (1 << 5) != 0 }
    /// A page fault on a write (error code bit 1).
    package var isWrite: Bool { errorCode & (1 << 1) != 0 }
}
