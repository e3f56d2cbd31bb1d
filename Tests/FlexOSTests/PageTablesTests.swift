import ControlProtocol
import GuestImage
import GuestMachine
import Testing

@testable import Monitor

@Suite(.tags(.unit)) struct PageTablesTests {
    let area: Range<UInt64> = 0x1000..<0x20_0000

    @Test func mapsFourKilobytePagesWithPermissions() throws {
        var tables = PageTables(area: area)
        try tables.map(.identity(0x40_0000..<0x40_3000, .readExecute))
        try tables.map(.identity(0x40_3000..<0x40_4000, .readWrite))
        #expect(tables.translate(0x40_1234)?.physicalAddress == 0x40_1234)
        #expect(tables.translate(0x40_1234)?.permissions == .readExecute)
        #expect(tables.translate(0x40_3008)?.permissions == .readWrite)
        #expect(tables.translate(0x40_4000) == nil)
        #expect(tables.translate(0x3F_F000) == nil)
        // PML4, PDPT, PD and one page table.
        #expect(tables.tables.count == 4)
    }

    @Test func entriesCarryProtectionKeysAndSupervisorPagesLackTheUserBit() throws {
        var tables = PageTables(area: area)
        var keyed = PageMapping.identity(0x40_0000..<0x40_2000, .readWrite)
        keyed.protectionKey = 5
        try tables.map(keyed)
        var large = PageMapping.identity(0x1_0000_0000..<0x1_0020_0000, .readWrite)
        large.protectionKey = 15
        try tables.map(large)
        var ringZero = PageMapping.identity(0x3F00_0000..<0x3F00_1000, .readExecute)
        ringZero.supervisorOnly = true
        try tables.map(ringZero)
        #expect(tables.protectionKey(of: 0x40_1FFF) == 5)
        #expect(tables.protectionKey(of: 0x1_0010_0000) == 15)
        #expect(tables.protectionKey(of: 0x3F00_0000) == 0)
        #expect(tables.protectionKey(of: 0x40_2000) == nil)
        let leaf = try #require(
            tables.tables.values.flatMap { $0 }.first { $0 & PageTables.addressMask == 0x3F00_0000 })
        #expect(leaf & PageTables.user == 0 && leaf & PageTables.present != 0)
        let keyedLeaf = try #require(
            tables.tables.values.flatMap { $0 }.first { $0 & PageTables.addressMask == 0x40_0000 })
        #expect(keyedLeaf >> 59 & 0xF == 5 && keyedLeaf & PageTables.user != 0 && keyedLeaf & PageTables.noExecute != 0)
    }

    @Test func usesLargePagesWhereAligned() throws {
        var tables = PageTables(area: area)
        try tables.map(
            PageMapping(
                virtualAddress: 0x1_0000_0000, physicalAddress: 0x1_0000_0000, size: 0x40_1000, permissions: .readWrite)
        )
        #expect(tables.translate(0x1_001F_FFFF)?.physicalAddress == 0x1_001F_FFFF)
        #expect(tables.translate(0x1_0040_0000)?.permissions == .readWrite)
        #expect(tables.translate(0x1_0040_1000) == nil)
        // Two 2 MiB pages and one 4 KiB page: PML4, PDPT, PD, one page table.
        #expect(tables.tables.count == 4)
    }

    @Test func everyLevelIsUserAccessibleAndLeavesCarryNoExecute() throws {
        var tables = PageTables(area: area)
        try tables.map(.identity(0x40_0000..<0x40_1000, .readOnly))
        var table = tables.root
        for level in (1...3).reversed() {
            let entry = tables.tables[table]![PageTables.index(0x40_0000, level: level)]
            #expect(entry & PageTables.user != 0, "level \(level) lacks the user bit")
            table = entry & PageTables.addressMask
        }
        let leaf = tables.tables[table]![PageTables.index(0x40_0000, level: 0)]
        #expect(leaf & PageTables.noExecute != 0)
        #expect(leaf & PageTables.writable == 0)
        #expect(leaf & PageTables.user != 0)
    }

    @Test func refusesUnalignedAndDoubleMappings() throws {
        var tables = PageTables(area: area)
        #expect(throws: PageTableError.self) { try tables.map(.identity(0x40_0010..<0x40_1000, .readOnly)) }
        try tables.map(.identity(0x40_0000..<0x40_1000, .readOnly))
        #expect(throws: PageTableError.alreadyMapped(virtualAddress: 0x40_0000)) {
            try tables.map(.identity(0x40_0000..<0x40_1000, .readWrite))
        }
    }

    @Test func reportsWhenTheTableAreaIsExhausted() {
        var tables = PageTables(area: 0x1000..<0x3000)
        #expect(throws: PageTableError.outOfTableSpace(capacity: 2)) {
            try tables.map(.identity(0x40_0000..<0x40_1000, .readOnly))
        }
    }
}

@Suite(.tags(.unit)) struct FormattingTests {
    @Test func sizesReadLikeAPersonWritesThem() {
        #expect(formatBytes(64 << 20) == "64 MiB")
        #expect(formatBytes(16_596_992) == "15.8 MiB")
        #expect(formatBytes(256 * 1024) == "256 KiB")
        #expect(formatBytes(4096) == "4 KiB")
        #expect(formatBytes(100) == "100 bytes")
        #expect(formatSeconds(1.5) == "1.5 s")
        #expect(formatSeconds(0.0047) == "4.7 ms")
        #expect(formatSeconds(0.000_480_2) == "480.2 µs")
    }

    @Test func commandLineSizesAndDurations() {
        #expect(CommandLineValues.byteCount("64M") == 64 << 20)
        #expect(CommandLineValues.byteCount("1GiB") == 1 << 30)
        #expect(CommandLineValues.byteCount("4096") == 4096)
        #expect(CommandLineValues.byteCount("lots") == nil)
        #expect(CommandLineValues.seconds("500ms") == 0.5)
        #expect(CommandLineValues.seconds("2m") == 120)
        #expect(CommandLineValues.seconds("-3s") == nil)
    }
}
