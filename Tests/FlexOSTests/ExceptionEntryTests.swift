import CKVM
import GuestImage
import GuestMachine
import KVM
import Testing

@testable import Monitor

/// The KVM engine's ring-0 exception entry, without a VM: what the monitor writes, and
/// what it accepts as a report (hostile guests store to the report address too).
@Suite(.tags(.unit)) struct ExceptionEntryTests {
    @Test func stubsPushAZeroOnlyWhereTheCPUPushesNoErrorCode() {
        let address = withUnsafeBytes(of: GuestLayout.trapReportAddress.littleEndian) { Array($0) }
        #expect(ExceptionEntry.stub(vector: 14) == [0x6A, 14, 0x48, 0xA3] + address + [0x0F, 0x0B])
        #expect(ExceptionEntry.stub(vector: 6) == [0x6A, 0x00, 0x6A, 6, 0x48, 0xA3] + address + [0x0F, 0x0B])
        #expect(
            (0..<ExceptionEntry.vectors).allSatisfy {
                UInt64(ExceptionEntry.stub(vector: $0).count) <= ExceptionEntry.stubBytes
            })
    }

    @Test func theEntryIsMappedForRingZeroOnlyAndApartFromThePageTables() {
        #expect(ExceptionEntry.mappings.allSatisfy { $0.supervisorOnly })
        #expect(!GuestLayout.pageTableArea.overlaps(GuestLayout.trapArea))
        #expect(ExceptionEntry.stack.upperBound <= GuestLayout.trapArea.upperBound)
    }

    /// Only a store from ring 0 with a whole frame on the entry's stack is a report.
    @Test func aStoreFromRingThreeOrOffTheEntrysStackIsNoReport() throws {
        let memory = try GuestMemory(name: "flexos-test-exception-entry", size: 0x20_0000)
        let space = GuestAddressSpace(slots: [.init(range: 0..<0x20_0000, memory: memory, offset: 0)], mapped: [])
        try ExceptionEntry.write(into: space)
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
}
