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

    /// An array of `count` elements of `stride` bytes growing by doubling (or by half, for
    /// the arrays that grow so: `SortedSet`'s nodes) to hold `adding` more: the new storage,
    /// which lives beside the old while it is copied; else 0.
    static func arrayGrowth(count: Int, capacity: Int, adding: Int, stride: Int, byHalf: Bool = false) -> Int {
        let (needed, overflow) = count.addingReportingOverflow(adding)
        guard !overflow else { return Int.max / 2 }
        guard needed > capacity else { return 0 }
        let grown = byHalf ? SortedSet.grownCapacity(capacity) : 2 &* capacity
        return PrivateHeap.blockBytes(for: 32 &+ max(needed, grown) &* stride)
    }

    /// A key of the keyspace with its slot there (the value is charged apart).
    static func key(_ count: Int) -> Int {
        bytes(count) + slot(MemoryLayout<[UInt8]>.stride + MemoryLayout<Entry>.stride)
    }

    /// One member of a collection of `kind`, from its arguments (`first` and, for a hash's
    /// value or a sorted set's member, `second`).
    static func member(of kind: Collection, first: Int, second: Int) -> Int {
        switch kind {
        case .list: return bytes(first) + 2 * MemoryLayout<[UInt8]>.stride
        case .set: return bytes(first) + slot(MemoryLayout<[UInt8]>.stride)
        case .hash: return bytes(first) + bytes(second) + slot(2 * MemoryLayout<[UInt8]>.stride)
        case .sortedSet:
            // The member, its tree node (the node array grows by doubling) and its slot in
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
