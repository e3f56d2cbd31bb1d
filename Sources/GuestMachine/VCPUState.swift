import CKVM

/// The register state that enters a guest directly in 64-bit ring 3 (PLATFORM.md).
///
/// On PVM hosts ring-0 guest code is emulated instruction by instruction, so FlexOS
/// guests never run in ring 0: the monitor builds the page tables and starts the vCPU
/// with user-mode segments, paging and long mode already on. The same state runs
/// natively under VT-x and AMD-V.
package enum VCPUState {
    package static let cr0: UInt64 = 0x8005_0033  // PG, AM, WP, NE, ET, MP, PE
    package static let cr4: UInt64 = 0x620  // PAE, OSFXSR, OSXMMEXCPT (PCIDE is refused by PVM)
    // CR4.PKE (intel-mpk; KVM takes it only where the vCPU's CPUID has PKU)
    package static let protectionKeysEnabled: UInt64 = 1 << 22
    package static let efer: UInt64 = 0xD01  // NXE, LMA, LME, SCE
    /// Only the reserved bit 1: ring 3 runs with interrupts off, so a wake raised while it
    /// runs waits for the sleep path's `hlt` (ExceptionEntry) and is never lost.
    package static let rflags: UInt64 = 0x2
    package static let userCode: UInt16 = 0x33
    package static let userData: UInt16 = 0x2B
    /// What CR2 starts as: an address no page fault can report (not canonical), so that a
    /// fault at address 0 is told apart from no page fault at all.
    package static let noPageFault: UInt64 = 0x8000_0000_0000_0000

    /// Special registers: control registers, EFER, ring-3 segments and the exception entry's
    /// tables, starting from `current`; CR4.PKE with `protectionKeys`.
    package static func specialRegisters(from current: kvm_sregs, pageTableRoot: UInt64, protectionKeys: Bool = false)
        -> kvm_sregs
    {
        var sregs = current
        sregs.cr0 = cr0
        sregs.cr2 = noPageFault
        sregs.cr3 = pageTableRoot
        sregs.cr4 = cr4 | (protectionKeys ? protectionKeysEnabled : 0)
        sregs.efer = efer
        sregs.cs = segment(selector: userCode, type: 0xB, longMode: true)
        let data = segment(selector: userData, type: 0x3, longMode: false)
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        sregs.ldt = kvm_segment()
        ExceptionEntry.install(in: &sregs)
        return sregs
    }

    /// General registers: start at `entry` with `stackTop` and the boot-info address in RDI.
    package static func registers(entry: UInt64, stackTop: UInt64, argument: UInt64) -> kvm_regs {
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsp = stackTop
        regs.rdi = argument
        regs.rflags = rflags
        return regs
    }

    private static func segment(selector: UInt16, type: UInt8, longMode: Bool) -> kvm_segment {
        kvm_segment(
            base: 0, limit: 0xFFFF_FFFF, selector: selector, type: type, present: 1, dpl: 3,
            db: longMode ? 0 : 1, s: 1, l: longMode ? 1 : 0, g: 1, avl: 0, unusable: 0, padding: 0)
    }
}
