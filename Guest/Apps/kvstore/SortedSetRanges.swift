import FlexOS

/// The sorted-set commands that read or remove by rank, score or member range (ZRANGE and
/// its older forms, ZRANK, ZCOUNT, ZREMRANGEBY*, ZPOPMAX), as Redis 7.0 parses and answers
/// them: options first, then the range, then the key.
extension Commands {
    /// What a range command selects: by rank, by score or by member (lex), in which
    /// direction, from where and how many, and whether scores are in the reply.
    struct RangeQuery {
        enum Kind { case rank, score, lex }
        var kind: Kind
        var reversed: Bool
        var withScores = false
        /// LIMIT offset count (a negative count: all the rest).
        var offset = 0, limit = -1
    }

    /// One end of a score or lex range: its bound and whether the bound itself is in it.
    struct Bound<T> {
        let value: T
        let inclusive: Bool
    }

    /// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
    static func zrange(_ c: Command, _ r: inout Reply) {
        zrange(c, RangeQuery(kind: .rank, reversed: false), options: true, store: false, &r)
    }

    /// ZRANGESTORE destination key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count]:
    /// the range replaces the destination (an empty one deletes it); answers its size.
    static func zrangestore(_ c: Command, _ r: inout Reply) {
        zrange(c, RangeQuery(kind: .rank, reversed: false), options: true, store: true, &r)
    }

    /// The older forms: ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX.
    static func zrange(_ kind: RangeQuery.Kind, reversed: Bool) -> Handler {
        { c, r in zrange(c, RangeQuery(kind: kind, reversed: reversed), options: false, store: false, &r) }
    }

    /// Parses the options after `key min max` (BYSCORE, BYLEX and REV only when `options`;
    /// WITHSCORES unless it stores), checks them, resolves the range to ranks and answers it
    /// or, with `store`, stores it under the destination before the key.
    private static func zrange(_ c: Command, _ base: RangeQuery, options: Bool, store: Bool, _ r: inout Reply) {
        var query = base
        var chosenKind = false, chosenDirection = false
        let key = store ? 2 : 1
        var index = key + 3
        while index < c.count {
            if !store && c.isArgument(index, "withscores") {
                query.withScores = true
            } else if c.isArgument(index, "limit") && index + 2 < c.count {
                guard let offset = Numbers.integer(c[index + 1]), let limit = Numbers.integer(c[index + 2]) else {
                    return r.error("ERR value is not an integer or out of range")
                }
                (query.offset, query.limit) = (offset, limit)
                index += 2
            } else if options && !chosenDirection && c.isArgument(index, "rev") {
                query.reversed = true
                chosenDirection = true
            } else if options && !chosenKind && (c.isArgument(index, "bylex") || c.isArgument(index, "byscore")) {
                query.kind = c.isArgument(index, "bylex") ? .lex : .score
                chosenKind = true
            } else {
                return r.error("ERR syntax error")
            }
            index += 1
        }
        // As in Redis, a LIMIT with count -1 (all) passes unnoticed.
        if query.limit != -1 && query.kind == .rank {
            return r.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        }
        if query.withScores && query.kind == .lex {
            return r.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        }
        // Reversed score and lex ranges are written max first.
        let (first, second) = (c.bytes(key + 1), c.bytes(key + 2))
        let (low, high) = query.reversed && query.kind != .rank ? (second, first) : (first, second)
        guard let select = selection(query, low, high, &r) else { return }
        guard let set = sortedSet(c.bytes(key), &r) else { return }
        let (start, count) = select(set)
        if store {
            storeRange(set, from: start, count: count, reversed: query.reversed, into: c.bytes(1), &r)
        } else {
            answer(set, from: start, count: count, reversed: query.reversed, withScores: query.withScores, &r)
        }
    }

    /// ZRANGESTORE's end: the selected elements, charged first, replace `destination`.
    private static func storeRange(
        _ set: SortedSet, from start: Int, count: Int, reversed: Bool, into destination: [UInt8], _ r: inout Reply
    ) {
        var cost = MemoryCost.key(destination.count)
        set.visit(from: start, limit: count, reversed: reversed) { element in
            cost &+= MemoryCost.member(of: .sortedSet, first: 0, second: element.member.count)
        }
        guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(cost)) else { return r.error(outOfMemory) }
        var stored = SortedSet()
        set.visit(from: start, limit: count, reversed: reversed) { element in
            _ = stored.add(element.member, score: element.score)
        }
        Keyspace.entries[destination] = count == 0 ? nil : Entry(value: .sortedSet(stored))
        r.integer(count)
    }

    /// The sorted set at `key` (empty when there is none); nil, with the error written,
    /// when the key holds another type.
    private static func sortedSet(_ key: [UInt8], _ r: inout Reply) -> SortedSet? {
        switch Keyspace.live(key)?.value {
        case nil: return SortedSet()
        case .sortedSet(let set)?: return set
        default:
            r.error(wrongType)
            return nil
        }
    }

    /// Turns the query's range into where to start (in the query's direction) and how many
    /// to take, for a given set; nil, with the error written, for a malformed range.
    private static func selection(
        _ query: RangeQuery, _ low: [UInt8], _ high: [UInt8], _ r: inout Reply
    ) -> ((SortedSet) -> (Int, Int))? {
        switch query.kind {
        case .rank:
            guard let first = Numbers.integer(low), let last = Numbers.integer(high) else {
                r.error("ERR value is not an integer or out of range")
                return nil
            }
            return { set in ranks(first, last, count: set.count) }
        case .score:
            guard let minimum = scoreBound(low), let maximum = scoreBound(high) else {
                r.error("ERR min or max is not a float")
                return nil
            }
            return { set in limited(query, set.count, forward: scoreRanks(set, minimum, maximum)) }
        case .lex:
            guard let minimum = lexBound(low), let maximum = lexBound(high) else {
                r.error("ERR min or max not valid string range item")
                return nil
            }
            return { set in limited(query, set.count, forward: lexRanks(set, minimum, maximum)) }
        }
    }

    /// Redis's rank range: negative ranks count from the end; an empty range is (0, 0).
    static func ranks(_ first: Int, _ last: Int, count: Int) -> (Int, Int) {
        let start = max(first < 0 ? count &+ first : first, 0)
        let end = min(last < 0 ? count &+ last : last, count - 1)
        guard start <= end, start < count else { return (0, 0) }
        return (start, end - start + 1)
    }

    /// A forward rank range, seen from the query's direction, then its LIMIT applied (a
    /// negative offset selects nothing, as in Redis).
    private static func limited(_ query: RangeQuery, _ count: Int, forward: Range<Int>) -> (Int, Int) {
        let start = query.reversed ? count - forward.upperBound : forward.lowerBound
        guard query.offset >= 0 else { return (0, 0) }
        let (skipped, overflow) = start.addingReportingOverflow(query.offset)
        let available = overflow ? 0 : max(forward.count - query.offset, 0)
        return (skipped, query.limit < 0 ? available : min(query.limit, available))
    }

    /// `(1.5` (exclusive), `1.5`, `-inf`, `+inf`, as Redis's strtod reads it: leading spaces
    /// skipped, nothing is 0, past a double's range is ±inf or 0.
    static func scoreBound(_ text: [UInt8]) -> Bound<Double>? {
        let exclusive = text.first == UInt8(ascii: "(")
        let number = Array(text.dropFirst(exclusive ? 1 : 0).drop { $0 == 32 || ($0 >= 9 && $0 <= 13) })
        if number.isEmpty { return Bound(value: 0, inclusive: !exclusive) }
        guard let (value, _) = number.withUnsafeBufferPointer({ Numbers.strtod($0) }) else { return nil }
        return Bound(value: value, inclusive: !exclusive)
    }

    /// `[a` (inclusive), `(a` (exclusive), `-` (before everything), `+` (after everything);
    /// nil for the two unbounded ends.
    static func lexBound(_ text: [UInt8]) -> Bound<[UInt8]?>? {
        switch text.first {
        case UInt8(ascii: "-") where text.count == 1: return Bound(value: nil, inclusive: false)
        case UInt8(ascii: "+") where text.count == 1: return Bound(value: nil, inclusive: true)
        case UInt8(ascii: "["): return Bound(value: Array(text.dropFirst()), inclusive: true)
        case UInt8(ascii: "("): return Bound(value: Array(text.dropFirst()), inclusive: false)
        default: return nil
        }
    }

    /// The forward ranks of the elements scored within [minimum, maximum].
    static func scoreRanks(_ set: SortedSet, _ minimum: Bound<Double>, _ maximum: Bound<Double>) -> Range<Int> {
        let below = set.count { minimum.inclusive ? $0.score < minimum.value : $0.score <= minimum.value }
        let within = set.count { maximum.inclusive ? $0.score <= maximum.value : $0.score < maximum.value }
        return below..<max(below, within)
    }

    /// The forward ranks of the members within [minimum, maximum], compared as bytes: the
    /// order of members that share one score, which is how ZRANGEBYLEX is meant to be used.
    static func lexRanks(_ set: SortedSet, _ minimum: Bound<[UInt8]?>, _ maximum: Bound<[UInt8]?>) -> Range<Int> {
        // A nil bound is `-` (nothing before it) at the start and `+` (everything up to it) at the end.
        let isMinus = { (bound: Bound<[UInt8]?>) in bound.value == nil && !bound.inclusive }
        func precedes(_ member: [UInt8], _ bound: Bound<[UInt8]?>, orEqual: Bool) -> Bool {
            guard let value = bound.value else { return !isMinus(bound) }
            return member.lexicographicallyPrecedes(value) || orEqual && member == value
        }
        let below = set.count { precedes($0.member, minimum, orEqual: !minimum.inclusive) }
        let within = set.count { precedes($0.member, maximum, orEqual: maximum.inclusive) }
        return below..<max(below, within)
    }

    /// Writes `count` elements from `start` on (in the given direction), with their scores
    /// when asked (as pairs, or one flat array when `flat`); -OOM, and false, when the reply
    /// cannot be held.
    @discardableResult
    private static func answer(
        _ set: SortedSet, from start: Int, count: Int, reversed: Bool, withScores: Bool, flat: Bool = false,
        _ r: inout Reply
    ) -> Bool {
        var bytes = Reply.arrayBytes
        set.visit(from: start, limit: count, reversed: reversed) { element in
            bytes &+= Reply.bulkBytes(element.member.count)
            if withScores { bytes &+= Reply.bulkBytes(DoubleText.text(element.score).count) }
        }
        guard r.makeRoom(for: bytes) else {
            r.error(outOfMemory)
            return false
        }
        withScores && !flat ? r.pairs(count) : r.array(withScores ? count * 2 : count)
        set.visit(from: start, limit: count, reversed: reversed) { element in
            r.bulk(element.member)
            if withScores { r.score(element.score) }
        }
        return true
    }

    /// ZRANK and ZREVRANK key member: the member's rank, or null.
    static func zrank(reversed: Bool) -> Handler {
        { c, r in
            guard let set = sortedSet(c.bytes(1), &r) else { return }
            guard let rank = set.rank(of: c.bytes(2)) else { return r.null() }
            r.integer(reversed ? set.count - 1 - rank : rank)
        }
    }

    /// ZCOUNT key min max and ZLEXCOUNT key min max.
    static func zcount(_ kind: RangeQuery.Kind) -> Handler {
        { c, r in
            guard let select = selection(RangeQuery(kind: kind, reversed: false), c.bytes(2), c.bytes(3), &r) else {
                return
            }
            guard let set = sortedSet(c.bytes(1), &r) else { return }
            r.integer(select(set).1)
        }
    }

    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX key min max: how many went.
    static func zremrange(_ kind: RangeQuery.Kind) -> Handler {
        { c, r in
            guard let select = selection(RangeQuery(kind: kind, reversed: false), c.bytes(2), c.bytes(3), &r) else {
                return
            }
            let key = c.bytes(1)
            guard let set = sortedSet(key, &r) else { return }
            let (start, count) = select(set)
            guard count > 0 else { return r.integer(0) }
            var doomed: [[UInt8]] = []
            doomed.reserveCapacity(count)
            set.visit(from: start, limit: count, reversed: false) { doomed.append($0.member) }
            _ = Keyspace.entries[key]?.value.withSortedSet { set in
                for member in doomed { _ = set.remove(member) }
            }
            Keyspace.dropIfEmptied(key)
            r.integer(doomed.count)
        }
    }

    /// ZPOPMAX key [count]: the highest members with their scores, removed.
    static func zpopmax(_ c: Command, _ r: inout Reply) {
        guard case .valid(let given) = PopCount(c) else { return PopCount(c).refuse(&r) }
        let key = c.bytes(1)
        guard let set = sortedSet(key, &r) else { return }
        let count = min(given ?? 1, set.count)
        // Without a count, one member and its score; with one, pairs (arrays of two in RESP3).
        guard answer(set, from: 0, count: count, reversed: true, withScores: true, flat: given == nil, &r) else { return }
        var popped: [[UInt8]] = []
        popped.reserveCapacity(count)
        set.visit(from: 0, limit: count, reversed: true) { popped.append($0.member) }
        _ = Keyspace.entries[key]?.value.withSortedSet { set in
            for member in popped { _ = set.remove(member) }
        }
        Keyspace.dropIfEmptied(key)
    }
}
