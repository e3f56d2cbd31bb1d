import FlexOS

/// What a key holds.
enum Value {
    case string([UInt8])
    case list(ByteDeque)
    case set(Set<[UInt8]>)
    case hash([[UInt8]: [UInt8]])
    case sortedSet(SortedSet)

    /// Runs `body` on the list in place; nil when the value is not a list. The value lets
    /// go of the list first, so the list is not copied on write.
    mutating func withList<R>(_ body: (inout ByteDeque) -> R) -> R? {
        guard case .list(var list) = self else { return nil }
        self = .string([])
        defer { self = .list(list) }
        return body(&list)
    }

    mutating func withSet<R>(_ body: (inout Set<[UInt8]>) -> R) -> R? {
        guard case .set(var set) = self else { return nil }
        self = .string([])
        defer { self = .set(set) }
        return body(&set)
    }

    mutating func withHash<R>(_ body: (inout [[UInt8]: [UInt8]]) -> R) -> R? {
        guard case .hash(var hash) = self else { return nil }
        self = .string([])
        defer { self = .hash(hash) }
        return body(&hash)
    }

    mutating func withSortedSet<R>(_ body: (inout SortedSet) -> R) -> R? {
        guard case .sortedSet(var set) = self else { return nil }
        self = .string([])
        defer { self = .sortedSet(set) }
        return body(&set)
    }
}

struct Entry {
    var value: Value
    /// Clock.milliseconds when the key expires; 0 for never.
    var expiresAt: UInt64 = 0
}

/// The one database (SELECT 0). Keys expire lazily, when they are next looked up.
enum Keyspace {
    nonisolated(unsafe) static var entries: [[UInt8]: Entry] = [:]

    /// What data may use of the private heap (Redis's maxmemory): the rest is kept for
    /// the dictionary's next growth and for the Swift runtime, so that a full store
    /// answers -OOM instead of trapping on a failed allocation.
    static var maximumMemory: UInt { PrivateHeap.capacity / 4 * 3 }

    /// Whether a command storing `bytes` of data under up to `keys` new keys fits: the
    /// data, and the dictionary's new table when the keys make it grow (for a moment the old
    /// table and the new one, of twice the buckets, both live).
    static func hasRoom(for bytes: Int, keys: Int) -> Bool {
        let buckets = UInt(entries.capacity) * 4 / 3 + 1
        let growth = entries.count + keys > entries.capacity ? 2 * buckets * UInt(MemoryLayout<[UInt8]>.stride + MemoryLayout<Entry>.stride + 1) : 0
        return hasRoom(forExactly: bytes &+ Int(growth))
    }

    /// What `body` finds in the value of `key`, which it reads but does not keep: the copy
    /// it sees is gone when this returns, so a change that follows happens in place.
    static func peek<R>(_ key: [UInt8], _ body: (Value) -> R?) -> R? {
        guard let entry = entries[key] else { return nil }
        return body(entry.value)
    }

    /// The capacity a string of `current` bytes grows to when it must hold `needed`: double
    /// while small, then 1 MiB more than needed (as Redis's strings grow), so that appends
    /// stay amortised O(1) without a large value doubling past the memory limit.
    static func grownCapacity(from current: Int, toHold needed: Int) -> Int {
        max(needed, min(current &* 2, needed &+ (1 << 20)))
    }

    /// Whether an allocation of `bytes` more fits under the limit now, no growth assumed:
    /// for a command that knows exactly what it will allocate.
    static func hasRoom(forExactly bytes: Int) -> Bool {
        let (need, overflow) = PrivateHeap.bytesInUse.addingReportingOverflow(UInt(max(bytes, 0)))
        return !overflow && need <= maximumMemory
    }

    /// The live entry of `key`, removing it when it has expired.
    static func live(_ key: [UInt8]) -> Entry? {
        guard let entry = entries[key] else { return nil }
        if entry.expiresAt != 0 && entry.expiresAt <= Clock.milliseconds {
            entries[key] = nil
            return nil
        }
        return entry
    }

    static func exists(_ key: [UInt8]) -> Bool { live(key) != nil }

    static var expiring: Int { entries.values.reduce(0) { $0 + ($1.expiresAt != 0 ? 1 : 0) } }
}
