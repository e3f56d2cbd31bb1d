import CFlexOSABI
import GuestImage

/// The monitor's side of a guest's console ring (see `struct flexos_console_ring`).
///
/// The guest appends and asks for a flush; the monitor copies out what is new. The guest
/// controls `head`, so it is checked before anything is copied.
package final class ConsoleRing: @unchecked Sendable {
    private let ring: UnsafeMutablePointer<flexos_console_ring>
    private let data: UnsafeMutableRawPointer
    package let capacity: UInt64

    /// Sets up an empty ring in the `bytes` of host memory at `host`.
    package convenience init(host: UnsafeMutableRawPointer, bytes: UInt64) {
        self.init(existing: host, bytes: bytes)
        ring.pointee.head = 0
        ring.pointee.tail = 0
        ring.pointee.size = capacity
    }

    /// The ring the guest already has in the `bytes` at `host` (a QEMU's RAM, where the
    /// guest may be writing while the monitor looks): nothing in it is touched.
    package init(existing host: UnsafeMutableRawPointer, bytes: UInt64) {
        ring = host.bindMemory(to: flexos_console_ring.self, capacity: 1)
        data = host + MemoryLayout<flexos_console_ring>.size
        capacity = bytes - UInt64(MemoryLayout<flexos_console_ring>.size)
    }

    /// The bytes written since the last drain. Nil when the guest has corrupted the ring.
    package func drain() -> [UInt8]? {
        let head = ring.pointee.head
        let tail = ring.pointee.tail
        guard head >= tail, head - tail <= capacity else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(head - tail))
        var position = tail
        while position < head {
            let start = position % capacity
            let count = min(head - position, capacity - start)
            bytes += UnsafeRawBufferPointer(start: data + Int(start), count: Int(count))
            position += count
        }
        ring.pointee.tail = head
        return bytes
    }
}
