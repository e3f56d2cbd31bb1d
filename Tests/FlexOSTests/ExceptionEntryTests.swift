import CFlexOSABI
import CKVM
import GuestImage
import GuestMachine
import KVM
import Testing

@testable import Monitor

/// The KVM engine's ring-0 exception entry, without a VM: what the monitor writes, and
/// what it accepts as a report (hostile guests store to the report address too).
@Suite(.tags(.unit)) struct ExceptionEntryTests {
    /// kvm_entry.S assembles to the bytes the monitor used to write itself: `push $0` (where
    /// the CPU pushes no error code), `push $vector`, `movabs %rax, trapReportAddress`, `ud2`.
    @Test func stubsPushAZeroOnlyWhereTheCPUPushesNoErrorCode() {
        let address = withUnsafeBytes(of: GuestLayout.trapReportAddress.littleEndian) { Array($0) }
        let withErrorCode: Set<Int> = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]
        for vector in 0..<ExceptionEntry.vectors {
            let expected = (withErrorCode.contains(vector) ? [] : [0x6A, 0x00]) + [0x6A, UInt8(vector), 0x48, 0xA3]
            let start = vector * Int(ExceptionEntry.stubBytes)
            let stub = Array(ExceptionEntry.code[start..<(start + expected.count + 10)])
            #expect(stub == expected + address + [0x0F, 0x0B], "vector \(vector)")
        }
    }

    @Test func theEntryIsMappedForRingZeroOnlyAndApartFromThePageTables() {
        #expect(ExceptionEntry.mappings(sleepInKernel: false).allSatisfy { $0.supervisorOnly })
        // Sleeping in the kernel adds one page ring 3 may run and not write: the sleep entry.
        let ringThree = ExceptionEntry.mappings(sleepInKernel: true).filter { !$0.supervisorOnly }
        #expect(ringThree.map(\.virtualAddress) == [FLEXOS_SLEEP_ENTRY] && ringThree.map(\.size) == [0x1000])
        #expect(ringThree.allSatisfy { $0.permissions == .readExecute })
        #expect(!GuestLayout.pageTableArea.overlaps(GuestLayout.trapArea))
        #expect(ExceptionEntry.stack.upperBound <= GuestLayout.trapArea.upperBound)
    }

    /// Only a store from ring 0 with a whole frame on the entry's stack is a report.
    @Test func aStoreFromRingThreeOrOffTheEntrysStackIsNoReport() throws {
        let memory = try GuestMemory(name: "flexos-test-exception-entry", size: 0x20_0000)
        let space = GuestAddressSpace(slots: [.init(range: 0..<0x20_0000, memory: memory, offset: 0)], mapped: [])
        try ExceptionEntry.write(into: space, sleepInKernel: false)
        let frameAt = ExceptionEntry.stack.upperBound - 56
        for (index, word) in [UInt64(14), 0x27, 0x41_6000, 0x33, 0x10206, 0x1_4004_0000, 0x2B].enumerated() {
            try space.physical(frameAt + UInt64(8 * index), length: 8).storeBytes(of: word, as: UInt64.self)
        }
        var ringZero = kvm_segment()
        ringZero.selector = ExceptionEntry.kernelCode
        var ringThree = kvm_segment()
        (ringThree.selector, ringThree.dpl) = (0x33, 3)
        let frame = try #require(ExceptionEntry.frame(stackPointer: frameAt, codeSegment: ringZero, space: space))
        #expect(frame.vector == 14 && frame.errorCode == 0x27 && frame.rip == 0x41_6000 && frame.fromUserMode)
        #expect(ExceptionEntry.frame(stackPointer: frameAt, codeSegment: ringThree, space: space) == nil)
        #expect(ExceptionEntry.frame(stackPointer: 0x40_0000, codeSegment: ringZero, space: space) == nil)
        #expect(
            ExceptionEntry.frame(
                stackPointer: ExceptionEntry.stack.upperBound - 48, codeSegment: ringZero, space: space) == nil)
    }

    /// The sleep path goes on to the #UD stub (and its report) unless the `ud2` is the sleep
    /// entry's; the #UD gate leads to it and the wake vector to a lone `iretq`, on the current stack.
    @Test func onlyTheSleepEntrysUD2Sleeps() throws {
        let offset = Int(ExceptionEntry.sleepPath - ExceptionEntry.stubs)
        let code = Array(ExceptionEntry.code[offset..<(offset + 43)])
        #expect(Array(code[0..<4]) == [0x48, 0x81, 0x3C, 0x24])  // cmp qword [rsp], sleepEntry
        #expect(code[4..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == UInt32(FLEXOS_SLEEP_ENTRY))
        #expect(Array(code[8..<10]) == [0x0F, 0x85])  // jne the #UD stub
        let jump = Int64(code[10..<14].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
        #expect(
            UInt64(Int64(ExceptionEntry.sleepPath) + 14 + jump) == ExceptionEntry.stubs + 6 * ExceptionEntry.stubBytes)
        let eoi: [UInt8] = [0x31, 0xC0, 0x31, 0xD2, 0xB9, 0x0B, 0x08, 0, 0, 0x0F, 0x30]  // wrmsr 0x80B, 0
        let timer: [UInt8] = [0x89, 0xF8, 0xB9, 0x38, 0x08, 0, 0, 0x0F, 0x30]  // wrmsr 0x838, edi
        let halt: [UInt8] = [0xFB, 0xF4, 0x48, 0x83, 0x04, 0x24, 0x02, 0x48, 0xCF]  // sti; hlt; add [rsp], 2; iretq
        #expect(Array(code[14...]) == eoi + timer + halt)
        #expect(ExceptionEntry.sleepPath + UInt64(code.count) <= ExceptionEntry.wakeHandler)

        let memory = try GuestMemory(name: "flexos-test-sleep-entry", size: 0x20_0000)
        let space = GuestAddressSpace(slots: [.init(range: 0..<0x20_0000, memory: memory, offset: 0)], mapped: [])
        try ExceptionEntry.write(into: space, sleepInKernel: true)
        let idt = try space.physical(ExceptionEntry.idt, length: 0x1000)
        func handler(_ vector: Int) -> (address: UInt64, stack: UInt64) {
            let low = idt.load(fromByteOffset: 16 * vector, as: UInt64.self)
            let high = idt.load(fromByteOffset: 16 * vector + 8, as: UInt64.self)
            return ((low & 0xFFFF) | ((low >> 48) << 16) | (high << 32), (low >> 32) & 7)
        }
        #expect(handler(6) == (ExceptionEntry.sleepPath, 1))
        #expect(handler(14) == (ExceptionEntry.stubs + 14 * ExceptionEntry.stubBytes, 1))
        #expect(handler(Int(ExceptionEntry.wakeVector)) == (ExceptionEntry.wakeHandler, 0))
        #expect(try space.physical(ExceptionEntry.wakeHandler, length: 2).load(as: UInt16.self) == 0xCF48)
        let entry = try space.physical(FLEXOS_SLEEP_ENTRY, length: 3)
        #expect((0..<3).map { entry.load(fromByteOffset: $0, as: UInt8.self) } == [0x0F, 0x0B, 0xC3])
    }
}
