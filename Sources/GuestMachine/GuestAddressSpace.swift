import GuestImage
import KVM

/// Why the monitor refused to touch a guest address a guest handed it.
public enum GuestAccessError: Error, Equatable, CustomStringConvertible {
    case notMapped(address: UInt64, length: UInt64)
    case notWritable(address: UInt64, length: UInt64)
    case notMemory(address: UInt64, length: UInt64)

    public var description: String {
        switch self {
        case .notMapped(let address, let length): return "\(hex(address))+\(length) is not mapped in the guest"
        case .notWritable(let address, let length): return "\(hex(address))+\(length) is read-only to the guest"
        case .notMemory(let address, let length): return "\(hex(address))+\(length) is not backed by guest memory"
        }
    }
}

/// One VM's guest memory as the monitor sees it: which guest ranges the guest may use
/// (and how), and which host memory backs each guest-physical range.
///
/// Every pointer a guest hands the monitor goes through `pointer(_:length:writable:)`,
/// which checks bounds, overflow and permissions against what the guest itself can
/// touch: a guest cannot make the monitor read or write its page tables, another
/// compartment's memory, or anything outside its memory slots.
package final class GuestAddressSpace: @unchecked Sendable {
    /// A memory slot: a guest-physical range and the host memory behind it.
    package struct Slot {
        package let range: Range<UInt64>
        package let memory: GuestMemory
        package let offset: UInt64

        package init(range: Range<UInt64>, memory: GuestMemory, offset: UInt64) {
            self.range = range
            self.memory = memory
            self.offset = offset
        }
    }

    package let slots: [Slot]
    package let mapped: [GuestRegion]

    package init(slots: [Slot], mapped: [GuestRegion]) {
        self.slots = slots
        self.mapped = mapped
    }

    /// The host address behind `length` bytes at guest address `address`, for monitor-side
    /// set-up that may touch unmapped guest-physical memory (page tables).
    package func physical(_ address: UInt64, length: UInt64) throws(GuestAccessError) -> UnsafeMutableRawPointer {
        let (end, overflow) = address.addingReportingOverflow(length)
        guard !overflow, let slot = slots.first(where: { $0.range.contains(address) && end <= $0.range.upperBound }),
            let host = slot.memory.pointer(at: slot.offset + (address - slot.range.lowerBound), length: length)
        else { throw GuestAccessError.notMemory(address: address, length: length) }
        return host
    }

    /// The host address behind `length` bytes the guest handed over at `address`, checked
    /// to be mapped for the guest (and writable when `writable`).
    package func pointer(_ address: UInt64, length: UInt64, writable: Bool) throws(GuestAccessError)
        -> UnsafeMutableRawPointer
    {
        let (end, overflow) = address.addingReportingOverflow(length)
        guard !overflow, let region = mapped.first(where: { $0.range.contains(address) && end <= $0.range.upperBound })
        else {
            throw GuestAccessError.notMapped(address: address, length: length)
        }
        if writable && !region.permissions.writable {
            throw GuestAccessError.notWritable(address: address, length: length)
        }
        return try physical(address, length: length)
    }

    /// Copies a `T` the guest handed over at `address`.
    package func read<T>(_ type: T.Type, at address: UInt64) throws(GuestAccessError) -> T {
        try pointer(address, length: UInt64(MemoryLayout<T>.size), writable: false).loadUnaligned(as: T.self)
    }

    /// Stores `value` at guest address `address`, which must be writable by the guest.
    package func write<T>(_ value: T, at address: UInt64) throws(GuestAccessError) {
        try pointer(address, length: UInt64(MemoryLayout<T>.size), writable: true).storeBytes(of: value, as: T.self)
    }

    /// Copies `length` bytes the guest handed over at `address`.
    package func bytes(at address: UInt64, length: UInt64) throws(GuestAccessError) -> [UInt8] {
        guard length > 0 else { return [] }
        let source = try pointer(address, length: length, writable: false)
        return Array(UnsafeRawBufferPointer(start: source, count: Int(length)))
    }
}
