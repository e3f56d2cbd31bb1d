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

    /// The same value in storage of its own (members are shared: none is changed in place).
    func copied() -> Value {
        switch self {
        case .string(let bytes): return .string(bytes.withUnsafeBufferPointer { [UInt8]($0) })
        case .list(let list): return .list(list.copied())
        case .set(let set):
            var copy = Set<[UInt8]>(minimumCapacity: set.count)
            for member in set { copy.insert(member) }
            return .set(copy)
        case .hash(let hash):
            var copy = [[UInt8]: [UInt8]](minimumCapacity: hash.count)
            for (field, value) in hash { copy[field] = value }
            return .hash(copy)
        case .sortedSet(let set): return .sortedSet(set.copied())
        }
    }

    /// An empty collection of `kind`: what a command adding members to a new key starts from.
    static func empty(_ kind: MemoryCost.Collection) -> Value {
        switch kind {
        case .list: .list(ByteDeque())
        case .set: .set([])
        case .hash: .hash([:])
        case .sortedSet: .sortedSet(SortedSet())
        }
    }

    /// What adding `members` to this collection allocates beside what it replaces (the
    /// next table or array, while the old one is copied): nothing for a string.
    func growth(adding members: Int) -> MemoryCost.Pieces {
        switch self {
        case .string: return MemoryCost.Pieces()
        case .list(let list): return MemoryCost.Pieces(list.growth(adding: members))
        case .set(let set):
            return MemoryCost.Pieces(
                MemoryCost.tableGrowth(count: set.count, capacity: set.capacity, adding: members, stride: MemoryLayout<[UInt8]>.stride))
        case .hash(let hash):
            return MemoryCost.Pieces(
                MemoryCost.tableGrowth(count: hash.count, capacity: hash.capacity, adding: members, stride: 2 * MemoryLayout<[UInt8]>.stride))
        case .sortedSet(let set): return set.growth(adding: members)
        }
    }
}

struct Entry {
    var value: Value
    /// What OBJECT ENCODING cannot read off the value (Encodings.swift); declared here, in
    /// the value's padding, so that it costs no memory.
    var hint = EncodingHint.contents
    /// Clock.milliseconds when the key expires; 0 for never.
    var expiresAt: UInt64 = 0
}

/// The keyspace's dictionary, split into 256 tables by the key's hash. A table doubles
/// with a 256th of the keys, so growth never needs a second copy of the whole keyspace's
/// table (which once stopped SETs at -OOM with a quarter of the limit unused) nor stalls
/// every client while it rehashes them all.
struct KeyTable {
    static let shardCount = 256
    private var shards = [[[UInt8]: Entry]](repeating: [:], count: KeyTable.shardCount)
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    private func shard(_ key: [UInt8]) -> Int { Int(truncatingIfNeeded: UInt(bitPattern: key.hashValue) >> 56) }

    subscript(key: [UInt8]) -> Entry? {
        get { shards[shard(key)][key] }
        // In place: a change to a key's list, set or hash does not copy it.
        // A change by a command that may write touches the clients WATCHing the key.
        _modify {
            let index = shard(key), before = shards[index].count
            let watched = Transactions.mustTouch(key)
            let existed = watched && shards[index][key] != nil
            yield &shards[index][key]
            if watched && (existed || shards[index][key] != nil) { Transactions.touch(key) }
            count += shards[index].count - before
        }
    }

    /// The table that adding `key` allocates beside its shard's old one, if it grows it.
    func growth(adding key: [UInt8]) -> Int {
        let table = shards[shard(key)]
        return MemoryCost.tableGrowth(count: table.count, capacity: table.capacity, adding: 1,
                                      stride: MemoryLayout<[UInt8]>.stride + MemoryLayout<Entry>.stride)
    }

    /// A key of a random non-empty shard, chosen at random there; nil when there is none.
    func randomKey() -> [UInt8]? {
        guard count > 0 else { return nil }
        let first = Int.random(in: 0..<KeyTable.shardCount)
        for step in 0..<KeyTable.shardCount {
            if let key = shards[(first + step) % KeyTable.shardCount].randomElement()?.key { return key }
        }
        return nil
    }

    /// The keys of shard `shard` (0 to 255) with their entries (SCAN walks them in turn).
    func forEach(inShard shard: Int, _ body: ([UInt8], Entry) -> Void) {
        for (key, entry) in shards[shard] { body(key, entry) }
    }

    /// Every key with its entry, shard by shard.
    func forEach(_ body: ([UInt8], Entry) -> Void) {
        for shard in shards { for (key, entry) in shard { body(key, entry) } }
    }

    var expiring: Int { shards.reduce(0) { total, shard in shard.values.reduce(total) { $0 + ($1.expiresAt != 0 ? 1 : 0) } } }

    mutating func removeAll() {
        Transactions.touchAll { self[$0] != nil }
        shards = [[[UInt8]: Entry]](repeating: [:], count: KeyTable.shardCount)
        count = 0
    }
}

/// The one database (SELECT 0). Keys expire lazily, when they are next looked up.
enum Keyspace {
    nonisolated(unsafe) static var entries = KeyTable()

    /// What data may use of the private heap (Redis's maxmemory): the rest is kept for
    /// tables and arrays while they grow (their old storage lives until the new one is
    /// filled) and for the Swift runtime, so that a full store answers -OOM instead of
    /// trapping on a failed allocation.
    static var maximumMemory: UInt { PrivateHeap.capacity / 4 * 3 }

    /// What data and a moment's growth together may use: the rest of the heap is the
    /// runtime's (a command's copies of its arguments, its reply).
    static var maximumTransient: UInt { PrivateHeap.capacity / 8 * 7 }

    /// Whether storing `bytes` more of data fits under the limit, with `growth` more for a
    /// moment (tables or arrays being copied into their larger successors), whose pieces
    /// must also find free pieces that large.
    static func hasRoom(for bytes: Int, growth: MemoryCost.Pieces = MemoryCost.Pieces()) -> Bool {
        let (data, overflow) = PrivateHeap.bytesInUse.addingReportingOverflow(UInt(max(bytes, 0)))
        let (peak, peakOverflow) = data.addingReportingOverflow(UInt(growth.total))
        guard !overflow, !peakOverflow, data <= maximumMemory, peak <= maximumTransient else { return false }
        return growth.larger <= 0 || PrivateHeap.canAllocate(growth.larger, then: growth.smaller)
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

    /// Drops `key` when a removal has left its collection empty: Redis keeps no empty
    /// lists, sets, hashes or sorted sets.
    static func dropIfEmptied(_ key: [UInt8]) {
        guard let value = entries[key]?.value else { return }
        let empty = switch value {
        case .string: false
        case .list(let list): list.isEmpty
        case .set(let set): set.isEmpty
        case .hash(let hash): hash.isEmpty
        case .sortedSet(let set): set.count == 0
        }
        if empty { entries[key] = nil }
    }
}
