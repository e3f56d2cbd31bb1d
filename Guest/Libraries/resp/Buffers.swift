import FlexOS

/// Bytes in the shared heap (the network library, maybe in another compartment, reads
/// and writes them), growing as needed. `failed` is set when the heap could not grow it;
/// the connection is then dropped rather than the compartment trapping.
struct SharedBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    private(set) var start = 0
    private(set) var end = 0
    private(set) var failed = false

    init?(capacity: Int) {
        guard let base = SharedMemory.allocate(UInt8.self, count: capacity) else { return nil }
        self.base = base
        self.capacity = capacity
    }

    var pending: Int { end - start }
    var pendingBytes: UnsafePointer<UInt8> { UnsafePointer(base + start) }
    var pendingBuffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base + start, count: end - start) }

    /// Where received bytes go (after `reserve`), and how many fit.
    var spare: UnsafeMutablePointer<UInt8> { base + end }
    var spareCount: Int { capacity - end }

    /// Counts `count` bytes written at `spare` as pending.
    mutating func commit(_ count: Int) { end += count }

    /// Drops everything pending.
    mutating func discard() { start = 0; end = 0 }

    /// Drops the last `count` bytes appended (replies CLIENT REPLY mutes).
    mutating func dropLast(_ count: Int) { end -= min(max(count, 0), end - start) }

    mutating func consumed(_ count: Int) {
        start += count
        if start == end { start = 0; end = 0 }
    }

    /// What making room for `count` more bytes would allocate: 0 when they fit already,
    /// else the larger buffer (which lives beside this one while it is copied).
    func growth(for count: Int) -> Int {
        guard count > capacity - (end - start) else { return 0 }
        return SharedMemory.grownCapacity(capacity, used: end - start, more: count) ?? Int.max / 2
    }

    /// Empties the buffer and gives its storage back, keeping `small` bytes (a client
    /// closed for holding too much must free it at once).
    mutating func empty(keeping small: Int) {
        discard()
        shrinkIfIdle(to: small)
    }

    /// Makes room for `count` more bytes; when the shared heap cannot, marks the buffer
    /// failed (its connection is then closed).
    mutating func reserve(_ count: Int) -> Bool {
        if makeRoom(for: count) { return true }
        failed = true
        return false
    }

    /// Makes room for `count` more bytes, if the shared heap can; the buffer stays usable
    /// either way (it grows as SharedMemory.grownCapacity says).
    mutating func makeRoom(for count: Int) -> Bool {
        if count <= capacity - end { return true }
        if start > 0 {
            (base).update(from: base + start, count: end - start)
            end -= start
            start = 0
            if count <= capacity - end { return true }
        }
        guard let grown = SharedMemory.grownCapacity(capacity, used: end, more: count),
              let bigger = SharedMemory.allocate(UInt8.self, count: grown) else { return false }
        bigger.update(from: base, count: end)
        SharedMemory.deallocate(base)
        base = bigger
        capacity = grown
        return true
    }

    /// Gives a large buffer back to the shared heap once nothing is pending in it (Redis
    /// frees an idle client's query buffer too): a burst does not keep its memory.
    mutating func shrinkIfIdle(to small: Int) {
        guard end == start, capacity > 16 * small, let smaller = SharedMemory.allocate(UInt8.self, count: small) else { return }
        SharedMemory.deallocate(base)
        base = smaller
        capacity = small
        start = 0
        end = 0
    }

    mutating func append(_ byte: UInt8) {
        guard reserve(1) else { return }
        base[end] = byte
        end += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, reserve(bytes.count) else { return }
        (base + end).update(from: source, count: bytes.count)
        end += bytes.count
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func appendCRLF() {
        guard reserve(2) else { return }
        base[end] = 13
        base[end + 1] = 10
        end += 2
    }

    mutating func append(decimal value: Int) {
        guard reserve(20) else { return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var magnitude = value.magnitude, count = 0
        withUnsafeMutableBytes(of: &digits) { digits in
            repeat {
                digits[count] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            if value < 0 { base[end] = UInt8(ascii: "-"); end += 1 }
            while count > 0 { count -= 1; base[end] = digits[count]; end += 1 }
        }
    }

    func free() { SharedMemory.deallocate(base) }
}
