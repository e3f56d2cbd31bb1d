import FlexOS

/// SRANDMEMBER, HRANDFIELD and ZRANDMEMBER: random members of a set, hash or sorted set, as
/// Redis 7.0 answers them. Without a count, one member (or null); with a positive count, that
/// many distinct members (all of them when there are fewer); with a negative one, exactly
/// that many, repeats allowed. Each call lists the collection once: O(n), where Redis's
/// sampling is O(count).
extension Commands {
    /// SRANDMEMBER key [count].
    static func srandmember(_ c: Command, _ r: inout Reply) {
        guard c.count <= 3 else { return r.error("ERR syntax error") }
        guard let (count, _) = randomCount(c, option: nil, &r) else { return }
        randomMembers(c, count: count, withValues: false, &r) { value in
            guard case .set(let set) = value else { return nil }
            return set.map { ($0, []) }
        }
    }

    /// HRANDFIELD key [count [WITHVALUES]].
    static func hrandfield(_ c: Command, _ r: inout Reply) {
        guard let (count, withValues) = randomCount(c, option: "withvalues", &r) else { return }
        randomMembers(c, count: count, withValues: withValues, &r) { value in
            guard case .hash(let hash) = value else { return nil }
            return hash.map { ($0.key, $0.value) }
        }
    }

    /// ZRANDMEMBER key [count [WITHSCORES]].
    static func zrandmember(_ c: Command, _ r: inout Reply) {
        guard let (count, withScores) = randomCount(c, option: "withscores", &r) else { return }
        randomMembers(c, count: count, withValues: withScores, valuesAreScores: true, &r) { value in
            guard case .sortedSet(let sorted) = value else { return nil }
            var members: [([UInt8], [UInt8])] = []
            sorted.visit(from: 0, limit: sorted.count, reversed: false) { element in
                members.append((element.member, withScores ? DoubleText.text(element.score) : []))
            }
            return members
        }
    }

    /// The count (nil: none given) and whether `option` followed it, read in Redis's order
    /// (the count, then the option, then the range a count with values may have); nil with
    /// the error replied.
    private static func randomCount(_ c: Command, option: StaticString?, _ r: inout Reply) -> (Int?, Bool)? {
        guard c.count >= 3 else { return (nil, false) }
        guard let count = Numbers.integer(c[2]) else {
            r.error(notInteger)
            return nil
        }
        guard count != Int.min else {
            r.error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
            return nil
        }
        guard c.count == 3 else {
            guard c.count == 4, let option, c.isArgument(3, option) else {
                r.error("ERR syntax error")
                return nil
            }
            guard count >= -Int.max / 2, count <= Int.max / 2 else {
                r.error("ERR value is out of range")
                return nil
            }
            return (count, true)
        }
        return (count, false)
    }

    /// Replies with random members of the collection `members` lists (each with its value
    /// or score text, or nil for the wrong type).
    private static func randomMembers(
        _ c: Command, count: Int?, withValues: Bool, valuesAreScores: Bool = false, _ r: inout Reply,
        _ members: (Value) -> [([UInt8], [UInt8])]?
    ) {
        guard let entry = Keyspace.live(c.bytes(1)) else { return count == nil ? r.null() : r.array(0) }
        // The list of members and the shuffle's indexes are made in the heap's headroom: a large
        // collection is refused with -OOM rather than trapping on a failed allocation.
        let size: Int
        switch entry.value {
        case .set(let set): size = set.count
        case .hash(let hash): size = hash.count
        case .sortedSet(let sorted): size = sorted.count
        default: return r.error(wrongType)
        }
        let listBytes = size.multipliedReportingOverflow(by: MemoryLayout<([UInt8], [UInt8])>.stride)
        guard !listBytes.overflow, PrivateHeap.canAllocate(listBytes.partialValue, then: size &* 8) else {
            return r.error(outOfMemory)
        }
        guard let all = members(entry.value) else { return r.error(wrongType) }
        guard let count else { return r.bulk(all[Int.random(in: 0..<all.count)].0) }
        let picks = count >= 0 ? min(count, all.count) : Int(count.magnitude)
        // Room for the reply before any list of picks is made: a count of -2^62 must not allocate first.
        let largest = all.reduce(0) { max($0, Reply.bulkBytes($1.0.count) + (withValues ? Reply.bulkBytes($1.1.count) : 0)) }
        let (bytes, overflow) = picks.multipliedReportingOverflow(by: largest)
        guard !overflow, r.makeRoom(for: Reply.arrayBytes + bytes) else { return r.error(outOfMemory) }
        var chosen: [Int]
        if count < 0 {
            chosen = (0..<picks).map { _ in Int.random(in: 0..<all.count) }
        } else {
            // The first `picks` places of a shuffle: distinct members, each equally likely.
            chosen = Array(0..<all.count)
            for place in 0..<picks { chosen.swapAt(place, Int.random(in: place..<all.count)) }
            chosen.removeLast(all.count - picks)
        }
        withValues ? r.pairs(picks) : r.array(picks)
        for index in chosen {
            r.bulk(all[index].0)
            if withValues { valuesAreScores ? r.score(text: all[index].1) : r.bulk(all[index].1) }
        }
    }
}
