import CKVM
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
/// ends the run; the guest never returns from it. The stubs are written by the monitor,
/// not taken from the image, and no compartment can write these pages.
package enum ExceptionEntry {
    package static let idt = GuestLayout.trapArea.lowerBound
    package static let gdt = idt + GuestLayout.pageSize
    package static let tss = gdt + 0x800
    package static let stubs = gdt + GuestLayout.pageSize
    package static let stack = (stubs + 3 * GuestLayout.pageSize)..<(stubs + 7 * GuestLayout.pageSize)
    package static let vectors = 32
    package static let stubBytes: UInt64 = 16

    package static let kernelCode: UInt16 = 0x08
    package static let taskState: UInt16 = 0x38

    /// The ring-0 mappings of every KVM guest: the tables and stack (read-write), the stubs
    /// (read-execute) and the report page (MMIO).
    package static var mappings: [PageMapping] {
        let report = GuestLayout.trapReportAddress..<(GuestLayout.trapReportAddress + GuestLayout.pageSize)
        return [
            .ringZero(idt..<stubs, .readWrite), .ringZero(stubs..<(stubs + GuestLayout.pageSize), .readExecute),
            .ringZero(stack, .readWrite), .ringZero(report, .readWrite)
        ]
    }

    /// Writes the IDT, GDT, TSS and stubs into the guest's memory.
    package static func write(into space: GuestAddressSpace) throws(GuestAccessError) {
        let idtBytes = try space.physical(idt, length: GuestLayout.pageSize)
        for vector in 0..<vectors {
            let (low, high) = gate(handler: stubs + UInt64(vector) * stubBytes)
            idtBytes.storeBytes(of: low, toByteOffset: 16 * vector, as: UInt64.self)
            idtBytes.storeBytes(of: high, toByteOffset: 16 * vector + 8, as: UInt64.self)
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
        let code = try space.physical(stubs, length: GuestLayout.pageSize)
        for vector in 0..<vectors {
            let bytes = stub(vector: vector)
            for (offset, byte) in bytes.enumerated() {
                code.storeBytes(of: byte, toByteOffset: Int(stubBytes) * vector + offset, as: UInt8.self)
            }
        }
    }

    /// The descriptor tables and task register in `sregs`.
    package static func install(in sregs: inout kvm_sregs) {
        sregs.idt = kvm_dtable(base: idt, limit: UInt16(16 * vectors - 1), padding: (0, 0, 0))
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

    /// A 64-bit interrupt gate to `handler` in ring 0, on IST 1, callable only by exceptions.
    private static func gate(handler: UInt64) -> (UInt64, UInt64) {
        let low =
            (handler & 0xFFFF) | (UInt64(kernelCode) << 16) | (1 << 32) | (0x8E << 40)
            | (((handler >> 16) & 0xFFFF) << 48)
        return (low, handler >> 32)
    }

    /// Vectors for which the CPU pushes an error code.
    private static let withErrorCode: Set<Int> = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]

    /// `push $0` (where the CPU pushes no error code), `push $vector`,
    /// `movabs %rax, trapReportAddress`, `ud2`.
    package static func stub(vector: Int) -> [UInt8] {
        var bytes: [UInt8] = withErrorCode.contains(vector) ? [] : [0x6A, 0x00]
        bytes += [0x6A, UInt8(vector), 0x48, 0xA3]
        withUnsafeBytes(of: GuestLayout.trapReportAddress.littleEndian) { bytes += $0 }
        return bytes + [0x0F, 0x0B]
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
