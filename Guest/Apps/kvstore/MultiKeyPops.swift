import FlexOS

/// LMPOP and ZMPOP (Redis 7.0): pop from the first non-empty of several keys (and, after
/// their timeout, BLMPOP and BZMPOP: BlockingCommands.swift).
extension Commands {
    /// `numkeys key... WHERE [COUNT count]`: the keys, whether WHERE named the first of its
    /// two words (LEFT, MIN), and the count; nil, with Redis's error written, when malformed.
    private static func parseMultiPop(
        _ c: Command, words: (StaticString, StaticString), _ r: inout Reply
    ) -> (keys: Range<Int>, first: Bool, count: Int)? {
        guard let keyCount = Numbers.integer(c[1]), keyCount > 0 else {
            r.error("ERR numkeys should be greater than 0")
            return nil
        }
        guard keyCount < c.count - 2 else {
            r.error("ERR syntax error")
            return nil
        }
        let whereIndex = 2 + keyCount
        guard c.isArgument(whereIndex, words.0) || c.isArgument(whereIndex, words.1) else {
            r.error("ERR syntax error")
            return nil
        }
        var count: Int? = nil
        var index = whereIndex + 1
        while index < c.count {
            guard count == nil, c.isArgument(index, "count"), index + 1 < c.count else {
                r.error("ERR syntax error")
                return nil
            }
            guard let value = Numbers.integer(c[index + 1]), value > 0 else {
                r.error("ERR count should be greater than 0")
                return nil
            }
            count = value
            index += 2
        }
        return (2..<whereIndex, c.isArgument(whereIndex, words.0), count ?? 1)
    }

    /// LMPOP numkeys key... LEFT|RIGHT [COUNT count]: [key, [elements]] from the first
    /// non-empty list, or what `none` answers (a null array).
    static func lmpop(_ c: Command, _ r: inout Reply, none: (inout Reply) -> Void = { $0.nullArray() }) {
        guard let (keys, front, count) = parseMultiPop(c, words: ("left", "right"), &r) else { return }
        for index in keys {
            let key = c.bytes(index)
            guard let value = Keyspace.live(key)?.value else { continue }
            guard case .list(let list) = value else { return r.error(wrongType) }
            let taken = min(count, list.count)
            var bytes = Reply.arrayBytes * 2 + Reply.bulkBytes(key.count)
            for offset in 0..<taken { bytes &+= Reply.bulkBytes(list[front ? offset : list.count - 1 - offset].count) }
            guard r.makeRoom(for: bytes) else { return r.error(outOfMemory) }
            let popped =
                Keyspace.entries[key]?.value.withList { list -> [[UInt8]] in
                    var values: [[UInt8]] = []
                    while values.count < taken, let value = front ? list.popFront() : list.popBack() { values.append(value) }
                    return values
                } ?? []
            Keyspace.dropIfEmptied(key)
            r.array(2)
            r.bulk(key)
            r.array(popped.count)
            for value in popped { r.bulk(value) }
            return
        }
        none(&r)
    }

    /// ZMPOP numkeys key... MIN|MAX [COUNT count]: [key, [[member, score]...]] from the
    /// first non-empty sorted set, or what `none` answers (a null array).
    static func zmpop(_ c: Command, _ r: inout Reply, none: (inout Reply) -> Void = { $0.nullArray() }) {
        guard let (keys, lowest, count) = parseMultiPop(c, words: ("min", "max"), &r) else { return }
        for index in keys {
            let key = c.bytes(index)
            guard let value = Keyspace.live(key)?.value else { continue }
            guard case .sortedSet(let set) = value else { return r.error(wrongType) }
            let taken = min(count, set.count)
            var bytes = Reply.arrayBytes * 2 + Reply.bulkBytes(key.count)
            var popped: [SortedSet.Element] = []
            popped.reserveCapacity(taken)
            set.visit(from: 0, limit: taken, reversed: !lowest) { element in
                bytes &+= Reply.arrayBytes + Reply.bulkBytes(element.member.count)
                    + Reply.bulkBytes(DoubleText.text(element.score).count)
                popped.append(element)
            }
            guard r.makeRoom(for: bytes) else { return r.error(outOfMemory) }
            _ = Keyspace.entries[key]?.value.withSortedSet { set in
                for element in popped { _ = set.remove(element.member) }
            }
            Keyspace.dropIfEmptied(key)
            r.array(2)
            r.bulk(key)
            r.array(popped.count)
            for element in popped {
                r.array(2)
                r.bulk(element.member)
                r.score(element.score)
            }
            return
        }
        none(&r)
    }
}
