import FlexOS

/// What data costs the private heap, as its allocator and Swift's collections lay it out:
/// what a command is charged before it runs, so that -OOM comes close to the limit (within
/// 20% of the real use) and never after the heap has run out.
enum MemoryCost {
    /// A `[UInt8]` of `count` bytes: its storage object (a 32-byte header, then the bytes)
    /// in a heap block.
    static func bytes(_ count: Int) -> Int { PrivateHeap.blockBytes(for: 32 &+ count) }

    /// A hash table's share for one entry of `stride` bytes, averaged over the table's
    /// growth: Swift's tables are between 3/8 and 3/4 full.
    static func slot(_ stride: Int) -> Int { 2 * stride }

    /// The table a Swift Set or Dictionary of `count` entries (room for `capacity`) of
    /// `stride` bytes grows into when `adding` more pass its capacity, else 0: for a moment
    /// it lives beside the old one.
    static func tableGrowth(count: Int, capacity: Int, adding: Int, stride: Int) -> Int {
        let (needed, overflow) = count.addingReportingOverflow(adding)
        guard !overflow else { return Int.max / 2 }
        guard needed > capacity else { return 0 }
        var buckets = 1
        while buckets / 4 * 3 < needed && buckets < Int.max / 4 { buckets *= 2 }
        return PrivateHeap.blockBytes(for: buckets &* (stride + 1))
    }

    /// An array of `count` elements of `stride` bytes (room for `capacity`) growing to hold
    /// `adding` more, each time full to `grown(capacity)`: the last storage it grows into,
    /// which lives beside the one before while it is copied; else 0. One command may pass
    /// several capacities: charging only the first growth once let a large push allocate
    /// twice what it was charged.
    static func arrayGrowth(count: Int, capacity: Int, adding: Int, stride: Int, grown: (Int) -> Int) -> Int {
        let (needed, overflow) = count.addingReportingOverflow(adding)
        guard !overflow else { return Int.max / 2 }
        guard needed > capacity else { return 0 }
        var last = capacity
        while last < needed {
            let next = grown(last)
            guard next > last, next < Int.max / 2 / max(stride, 1) else { return Int.max / 2 }
            last = next
        }
        return PrivateHeap.blockBytes(for: 32 &+ last &* stride)
    }

    /// The new storage a command's tables and arrays may grow into, each beside the storage
    /// it replaces: the two largest pieces, which may be live at once. One ZADD grows a
    /// sorted set's node array and then its score table; checking only the larger for a
    /// free piece once let the table find none, and the store trapped.
    struct Pieces {
        private(set) var larger = 0
        private(set) var smaller = 0

        init(_ pieces: Int...) { for piece in pieces { add(piece) } }

        mutating func add(_ bytes: Int) {
            if bytes > larger { (larger, smaller) = (bytes, larger) } else if bytes > smaller { smaller = bytes }
        }

        /// Both pieces: what growth may add to the heap's use for a moment.
        var total: Int {
            let (sum, overflow) = larger.addingReportingOverflow(smaller)
            return overflow ? Int.max / 2 : sum
        }
    }

    /// A key of the keyspace with its slot there (the value is charged apart).
    static func key(_ count: Int) -> Int {
        bytes(count) + slot(MemoryLayout<[UInt8]>.stride + MemoryLayout<Entry>.stride)
    }

    /// All of `value` in storage of its own (what COPY allocates).
    static func value(_ value: Value) -> Int {
        switch value {
        case .string(let text): return bytes(text.count)
        case .list(let list):
            var total = 0
            for index in 0..<list.count { total &+= member(of: .list, first: list[index].count, second: 0) }
            return total
        case .set(let set): return set.reduce(0) { $0 &+ member(of: .set, first: $1.count, second: 0) }
        case .hash(let hash):
            return hash.reduce(0) { $0 &+ member(of: .hash, first: $1.key.count, second: $1.value.count) }
        case .sortedSet(let set):
            return set.scoresByMember.reduce(0) { $0 &+ member(of: .sortedSet, first: 0, second: $1.key.count) }
        }
    }

    /// One member of a collection of `kind`, from its arguments (`first` and, for a hash's
    /// value or a sorted set's member, `second`).
    static func member(of kind: Collection, first: Int, second: Int) -> Int {
        switch kind {
        case .list: return bytes(first) + 2 * MemoryLayout<[UInt8]>.stride
        case .set: return bytes(first) + slot(MemoryLayout<[UInt8]>.stride)
        case .hash: return bytes(first) + bytes(second) + slot(2 * MemoryLayout<[UInt8]>.stride)
        case .sortedSet:
            // The member, its tree node (the node array grows by half) and its slot in
            // the member-to-score table; the table shares the member's bytes.
            return bytes(second) + MemoryLayout<SortedSet.Node>.stride * 3 / 2
                + slot(MemoryLayout<[UInt8]>.stride + MemoryLayout<Double>.stride)
        }
    }

    /// The kinds of collection a key can hold, and how many arguments each member takes.
    enum Collection {
        case list, set, hash, sortedSet

        var argumentsPerMember: Int { self == .hash || self == .sortedSet ? 2 : 1 }
    }
}
