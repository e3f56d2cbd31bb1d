import CFlexOSABI
import CKVM
import CKVMEntry
import GuestImage

/// How an exception in a KVM guest reaches the monitor with its vector and error code.
///
/// FlexOS guests run in ring 3 and handle no exception themselves. Without an IDT the
/// first one becomes a triple fault, and the evidence is the vCPU's state at shutdown;
/// but on AMD hosts KVM resets the vCPU on shutdown (the VMCB is undefined after it),
/// and no host says what the error code was (whether a page fault was a write, or the
/// protection-key bit). So the monitor gives every KVM guest a minimal ring-0 entry in
/// pages only ring 0 maps: an IDT whose 32 gates switch (IST 1) to a stack of their own
/// and run a stub that pushes the vector and stores to `trapReportAddress` (an MMIO exit,
/// no memory slot). The monitor then reads the CPU's exception frame off that stack and
/// ends the run; the guest never returns from it. The code is Guest/Ring0/kvm_entry.S,
/// assembled into the monitor (every piece of ring-0 code lives in Guest/Ring0); this
/// file builds the tables around it. It comes from the monitor, not from the image, and
/// no compartment can write these pages.
///
/// Where the engine lets guests sleep in the kernel (flexos_abi.h), the same pages hold the
/// sleep path: ring 3 calls FLEXOS_SLEEP_ENTRY (`ud2; ret`, the one page here ring 3 may
/// run), and the #UD gate leads to code that first checks the `ud2` came from exactly there
/// (anything else goes on to the #UD stub and its report), then acknowledges the last
/// interrupt, arms the local APIC's one-shot timer with EDI nanoseconds, and halts with
/// interrupts on until the wake vector arrives (a doorbell, a device or the timer), whose
/// handler only returns. Ring 0 reads nothing a compartment wrote but the CPU's frame and
/// EDI (a count), and writes only the APIC's EOI and timer: a compartment can make its own
/// vCPU sleep, nothing more. Under PVM ring 0 is emulated instruction by instruction, so
/// the path is short: eleven instructions to sleep, three after the wake.
package enum ExceptionEntry {
    package static let idt = GuestLayout.trapArea.lowerBound
    package static let gdt = idt + GuestLayout.pageSize
    package static let tss = gdt + 0x800
    package static let stubs = gdt + GuestLayout.pageSize
    package static let stack = (stubs + 3 * GuestLayout.pageSize)..<(stubs + 7 * GuestLayout.pageSize)
    package static let vectors = Int(FLEXOS_KVM_ENTRY_VECTORS)
    package static let stubBytes = UInt64(FLEXOS_KVM_ENTRY_STUB_BYTES)
    /// The sleep path and the wake handler, after the 32 stubs.
    package static let sleepPath = stubs + UInt64(FLEXOS_KVM_ENTRY_SLEEP_PATH)
    package static let wakeHandler = stubs + UInt64(FLEXOS_KVM_ENTRY_WAKE_HANDLER)
    /// The one interrupt vector: doorbells, devices, the timer and spurious interrupts.
    package static let wakeVector: UInt8 = 0x40
    package static let sleepEntry = FLEXOS_SLEEP_ENTRY
    private static let invalidOpcode = 6

    package static let kernelCode: UInt16 = 0x08
    package static let taskState: UInt16 = 0x38

    /// The ring-0 mappings of every KVM guest: the tables and stack (read-write), the stubs
    /// (read-execute) and the report page (MMIO); with `sleepInKernel`, the sleep entry for ring 3.
    package static func mappings(sleepInKernel: Bool) -> [PageMapping] {
        let report = GuestLayout.trapReportAddress..<(GuestLayout.trapReportAddress + GuestLayout.pageSize)
        let sleep =
            sleepInKernel ? [PageMapping.identity(sleepEntry..<(sleepEntry + GuestLayout.pageSize), .readExecute)] : []
        return [
            .ringZero(idt..<stubs, .readWrite), .ringZero(stubs..<(stubs + GuestLayout.pageSize), .readExecute),
            .ringZero(stack, .readWrite), .ringZero(report, .readWrite)
        ] + sleep
    }

    /// Writes the IDT, GDT, TSS and the ring-0 code into the guest's memory; with
    /// `sleepInKernel`, the sleep entry, and the gates that lead to the sleep path and the wake handler.
    package static func write(into space: GuestAddressSpace, sleepInKernel: Bool) throws(GuestAccessError) {
        let idtBytes = try space.physical(idt, length: GuestLayout.pageSize)
        let setGate = { (vector: Int, handler: UInt64, stack: UInt64) in
            let (low, high) = gate(handler: handler, interruptStack: stack)
            idtBytes.storeBytes(of: low, toByteOffset: 16 * vector, as: UInt64.self)
            idtBytes.storeBytes(of: high, toByteOffset: 16 * vector + 8, as: UInt64.self)
        }
        for vector in 0..<vectors { setGate(vector, stubs + UInt64(vector) * stubBytes, 1) }
        try copy(code, to: stubs, in: space)
        if sleepInKernel {
            setGate(invalidOpcode, sleepPath, 1)
            // The wake arrives in ring 0, at the `hlt`: it stays on the sleep path's stack.
            setGate(Int(wakeVector), wakeHandler, 0)
            try copy(sleepEntryCode, to: sleepEntry, in: space)
        }
        let gdtBytes = try space.physical(gdt, length: GuestLayout.pageSize)
        for (index, descriptor) in globalDescriptors.enumerated() {
            gdtBytes.storeBytes(of: descriptor, toByteOffset: 8 * index, as: UInt64.self)
        }
        // The 64-bit TSS: RSP0 at 4, IST1 at 36, the I/O map base (none) at 102.
        let tssBytes = try space.physical(tss, length: 0x68)
        tssBytes.storeBytes(of: stack.upperBound, toByteOffset: 4, as: UInt64.self)
        tssBytes.storeBytes(of: stack.upperBound, toByteOffset: 36, as: UInt64.self)
        tssBytes.storeBytes(of: UInt16(0x68), toByteOffset: 102, as: UInt16.self)
    }

    /// The stubs, the sleep path and the wake handler, as kvm_entry.S assembled them.
    package static var code: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: flexos_kvm_entry_bytes(), count: Int(FLEXOS_KVM_ENTRY_BYTES))
    }
    /// The sleep entry ring 3 calls: `ud2; ret`.
    package static var sleepEntryCode: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: flexos_kvm_sleep_entry_bytes(), count: Int(flexos_kvm_sleep_entry_size()))
    }

    private static func copy(_ bytes: UnsafeRawBufferPointer, to address: UInt64, in space: GuestAddressSpace)
        throws(GuestAccessError)
    {
        let memory = try space.physical(address, length: UInt64(bytes.count))
        memory.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    /// The descriptor tables and task register in `sregs`.
    package static func install(in sregs: inout kvm_sregs) {
        sregs.idt = kvm_dtable(base: idt, limit: UInt16(16 * (Int(wakeVector) + 1) - 1), padding: (0, 0, 0))
        sregs.gdt = kvm_dtable(base: gdt, limit: UInt16(8 * globalDescriptors.count - 1), padding: (0, 0, 0))
        sregs.tr = kvm_segment(
            base: tss, limit: 0x67, selector: taskState, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0,
            unusable: 0, padding: 0)
    }

    /// Null, ring-0 code (0x08) and data (0x10), ring-3 data (0x2B) and code (0x33), then
    /// the busy 64-bit TSS (0x38). Accessed bits are preset so the CPU never writes them.
    private static var globalDescriptors: [UInt64] {
        let limit: UInt64 = 0x67
        let low = limit | ((tss & 0xFF_FFFF) << 16) | (0x8B << 40) | (((tss >> 24) & 0xFF) << 56)
        return [
            0, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0, 0, 0x00CF_F300_0000_FFFF, 0x00AF_FB00_0000_FFFF, low,
            tss >> 32
        ]
    }

    /// A 64-bit interrupt gate to `handler` in ring 0, on IST `interruptStack` (0: the
    /// current stack), callable only by exceptions and interrupts.
    private static func gate(handler: UInt64, interruptStack: UInt64) -> (UInt64, UInt64) {
        let low =
            (handler & 0xFFFF) | (UInt64(kernelCode) << 16) | (interruptStack << 32) | (0x8E << 40)
            | (((handler >> 16) & 0xFFFF) << 48)
        return (low, handler >> 32)
    }

    /// Where a vCPU stopped at `rip` sleeps from: the return address of its call to the sleep
    /// entry, read off the ring-3 stack the CPU's frame names; nil when it is not on the sleep path.
    package static func sleepCaller(rip: UInt64, space: GuestAddressSpace) -> UInt64? {
        guard (sleepPath..<wakeHandler).contains(rip),
            let frame = try? space.physical(stack.upperBound - 40, length: 40),
            frame.load(as: UInt64.self) == sleepEntry
        else { return nil }
        return try? space.read(UInt64.self, at: frame.load(fromByteOffset: 24, as: UInt64.self))
    }

    /// What a stub leaves on the trap stack: its vector, then the CPU's frame.
    package struct Frame: Equatable {
        package let vector: UInt64, errorCode: UInt64, rip: UInt64, cs: UInt64, rflags: UInt64, rsp: UInt64, ss: UInt64

        /// Whether the exception came from ring 3 (the guest's code).
        package var fromUserMode: Bool { cs & 3 == 3 }
    }

    /// The frame a stub reported, read from the trap stack at `stackPointer` (the vCPU's
    /// RSP at the store); nil when the store did not come from a stub with a whole frame.
    package static func frame(stackPointer: UInt64, codeSegment: kvm_segment, space: GuestAddressSpace) -> Frame? {
        guard codeSegment.dpl == 0, codeSegment.selector == kernelCode else { return nil }
        let words = 7
        guard stack.contains(stackPointer), stackPointer % 8 == 0, stack.upperBound - stackPointer >= UInt64(8 * words),
            let words = try? space.physical(stackPointer, length: UInt64(8 * words))
        else { return nil }
        let value = { (index: Int) in words.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self) }
        guard value(0) < UInt64(vectors) else { return nil }
        return Frame(
            vector: value(0), errorCode: value(1), rip: value(2), cs: value(3), rflags: value(4), rsp: value(5),
            ss: value(6))
    }
}
