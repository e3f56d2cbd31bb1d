import GuestImage

/// What the guest may do with a range of pages. Every mapping is readable and user-mode.
public struct PagePermissions: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var writable: Bool
    public var executable: Bool

    public init(writable: Bool, executable: Bool) {
        self.writable = writable
        self.executable = executable
    }

    public static let readOnly = PagePermissions(writable: false, executable: false)
    public static let readWrite = PagePermissions(writable: true, executable: false)
    public static let readExecute = PagePermissions(writable: false, executable: true)

    public var description: String { "r" + (writable ? "w" : "-") + (executable ? "x" : "-") }
}

/// One guest-virtual range backed by guest-physical memory.
public struct PageMapping: Equatable, Sendable {
    public var virtualAddress: UInt64
    public var physicalAddress: UInt64
    public var size: UInt64
    public var permissions: PagePermissions
    /// Ring 0 only (the QEMU engine's shim); every guest page is a user page.
    public var supervisorOnly = false
    /// The protection key (0-15) its entries carry, in bits 62:59 (intel-mpk: a
    /// compartment's key; 0 for what every compartment shares).
    public var protectionKey: UInt8 = 0

    public init(virtualAddress: UInt64, physicalAddress: UInt64, size: UInt64, permissions: PagePermissions) {
        self.virtualAddress = virtualAddress
        self.physicalAddress = physicalAddress
        self.size = size
        self.permissions = permissions
    }

    /// A mapping where guest-virtual equals guest-physical, as for everything FlexOS maps.
    public static func identity(_ range: Range<UInt64>, _ permissions: PagePermissions) -> PageMapping {
        PageMapping(
            virtualAddress: range.lowerBound, physicalAddress: range.lowerBound,
            size: range.upperBound - range.lowerBound, permissions: permissions)
    }

    /// An identity mapping for ring 0 only (an engine's own pages: the QEMU shim, the KVM exception entry).
    public static func ringZero(_ range: Range<UInt64>, _ permissions: PagePermissions) -> PageMapping {
        var mapping = identity(range, permissions)
        mapping.supervisorOnly = true
        return mapping
    }
}

public enum PageTableError: Error, Equatable, CustomStringConvertible {
    case unaligned(PageMapping)
    case alreadyMapped(virtualAddress: UInt64)
    case outOfTableSpace(capacity: Int)
    case nonCanonical(virtualAddress: UInt64)

    public var description: String {
        switch self {
        case .unaligned(let mapping):
            return
                "cannot map \(hex(mapping.virtualAddress))+\(hex(mapping.size)): addresses and size must be page-aligned"
        case .alreadyMapped(let address):
            return "guest page \(hex(address)) is mapped twice"
        case .outOfTableSpace(let capacity):
            return "the page tables need more than the \(capacity) pages reserved for them"
        case .nonCanonical(let address):
            return "\(hex(address)) is not a canonical lower-half address"
        }
    }
}

/// x86-64 four-level page tables, built in memory without touching a VM.
///
/// Every level carries Present|User (PVM runs the guest in ring 3, so every level must
/// allow user access) and intermediate levels allow writes; the leaf decides writable and
/// no-execute. 2 MiB pages are used where both addresses and the rest of the mapping allow.
public struct PageTables: Sendable {
    package static let present: UInt64 = 1 << 0
    package static let writable: UInt64 = 1 << 1
    package static let user: UInt64 = 1 << 2
    package static let accessed: UInt64 = 1 << 5
    package static let dirty: UInt64 = 1 << 6
    package static let largePage: UInt64 = 1 << 7
    package static let noExecute: UInt64 = 1 << 63
    package static let protectionKeyShift: UInt64 = 59
    package static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

    /// The guest-physical address of the top level (the value of CR3).
    public let root: UInt64
    /// Each table page by guest-physical address, 512 entries.
    public private(set) var tables: [UInt64: [UInt64]]
    private let area: Range<UInt64>
    private var nextFree: UInt64

    /// Starts empty tables whose pages are taken from `area` (guest-physical).
    public init(area: Range<UInt64>) {
        self.area = area
        root = area.lowerBound
        nextFree = area.lowerBound + GuestLayout.pageSize
        tables = [root: [UInt64](repeating: 0, count: 512)]
    }

    /// Adds `mapping`, splitting it into 2 MiB and 4 KiB pages.
    public mutating func map(_ mapping: PageMapping) throws(PageTableError) {
        let page = GuestLayout.pageSize
        let large = GuestLayout.largePageSize
        guard mapping.virtualAddress % page == 0, mapping.physicalAddress % page == 0, mapping.size % page == 0 else {
            throw PageTableError.unaligned(mapping)
        }
        guard mapping.virtualAddress + mapping.size <= (1 << 47) else {
            throw PageTableError.nonCanonical(virtualAddress: mapping.virtualAddress)
        }
        var offset: UInt64 = 0
        while offset < mapping.size {
            let virtual = mapping.virtualAddress + offset
            let physical = mapping.physicalAddress + offset
            let useLarge = virtual % large == 0 && physical % large == 0 && mapping.size - offset >= large
            try mapPage(
                virtual: virtual, physical: physical, large: useLarge, permissions: mapping.permissions,
                user: !mapping.supervisorOnly,
                key: mapping.protectionKey)
            offset += useLarge ? large : page
        }
    }

    /// What `virtualAddress` maps to: the guest-physical address and permissions, or nil.
    public func translate(_ virtualAddress: UInt64) -> (physicalAddress: UInt64, permissions: PagePermissions)? {
        var table = root
        for level in (1...3).reversed() {
            guard let entry = tables[table]?[PageTables.index(virtualAddress, level: level)],
                entry & PageTables.present != 0
            else { return nil }
            if level == 1 && entry & PageTables.largePage != 0 {
                return (
                    (entry & PageTables.addressMask & ~(GuestLayout.largePageSize - 1))
                        | (virtualAddress & (GuestLayout.largePageSize - 1)), PageTables.permissions(entry)
                )
            }
            table = entry & PageTables.addressMask
        }
        guard let entry = tables[table]?[PageTables.index(virtualAddress, level: 0)], entry & PageTables.present != 0
        else { return nil }
        return (
            (entry & PageTables.addressMask) | (virtualAddress & (GuestLayout.pageSize - 1)),
            PageTables.permissions(entry)
        )
    }

    /// The index into the table of `level` (3 = PML4 ... 0 = page table).
    /// The protection key of the entry that maps `virtualAddress`, nil when it is not mapped.
    public func protectionKey(of virtualAddress: UInt64) -> UInt8? {
        var table = root
        for level in (0...3).reversed() {
            guard let entry = tables[table]?[PageTables.index(virtualAddress, level: level)],
                entry & PageTables.present != 0
            else { return nil }
            if level == 0 || (level == 1 && entry & PageTables.largePage != 0) {
                return UInt8((entry >> PageTables.protectionKeyShift) & 0xF)
            }
            table = entry & PageTables.addressMask
        }
        return nil
    }

    package static func index(_ address: UInt64, level: Int) -> Int {
        Int((address >> (12 + 9 * UInt64(level))) & 0x1FF)
    }

    package static func permissions(_ entry: UInt64) -> PagePermissions {
        PagePermissions(writable: entry & writable != 0, executable: entry & noExecute == 0)
    }

    private mutating func mapPage(
        virtual: UInt64, physical: UInt64, large: Bool, permissions: PagePermissions, user: Bool, key: UInt8
    ) throws(PageTableError) {
        var table = root
        for level in stride(from: 3, to: large ? 1 : 0, by: -1) {
            table = try childTable(of: table, index: PageTables.index(virtual, level: level), virtual: virtual)
        }
        let index = PageTables.index(virtual, level: large ? 1 : 0)
        guard tables[table]![index] == 0 else { throw PageTableError.alreadyMapped(virtualAddress: virtual) }
        // Accessed and Dirty are set up front: a shadow-paging host (PVM) then need not trap
        // the first access and first write of each page to set them, and prefetches
        // neighbouring entries on a fault.
        var entry =
            physical | PageTables.present | (user ? PageTables.user : 0) | PageTables.accessed | PageTables.dirty
        if large { entry |= PageTables.largePage }
        if permissions.writable { entry |= PageTables.writable }
        if !permissions.executable { entry |= PageTables.noExecute }
        entry |= UInt64(key & 0xF) << PageTables.protectionKeyShift
        tables[table]![index] = entry
    }

    /// The table an entry points to, created if the entry is empty.
    private mutating func childTable(of table: UInt64, index: Int, virtual: UInt64) throws(PageTableError) -> UInt64 {
        let entry = tables[table]![index]
        if entry & PageTables.present != 0 {
            guard entry & PageTables.largePage == 0 else { throw PageTableError.alreadyMapped(virtualAddress: virtual) }
            return entry & PageTables.addressMask
        }
        guard nextFree < area.upperBound else {
            throw PageTableError.outOfTableSpace(
                capacity: Int((area.upperBound - area.lowerBound) / GuestLayout.pageSize))
        }
        let child = nextFree
        nextFree += GuestLayout.pageSize
        tables[child] = [UInt64](repeating: 0, count: 512)
        tables[table]![index] = child | PageTables.present | PageTables.writable | PageTables.user | PageTables.accessed
        return child
    }
}
