import FlexOS

/// The blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
/// The store tries each as its non-blocking form; when there is nothing to pop it answers
/// resp with a block record (`B`, the timeout in milliseconds, 0 for none), and resp holds
/// the client, trying the command again after every turn that ran other commands, until it
/// is served or its time is up (resp then answers the null array, as Redis does). Inside a
/// transaction they never block: nothing to pop is the null array at once.
extension Commands {
    /// The timeout at argument `index` (seconds, fractions allowed) in milliseconds; nil
    /// with Redis's error replied.
    static func timeout(_ c: Command, _ index: Int, _ r: inout Reply) -> Int? {
        guard let seconds = Numbers.score(c[index]), !seconds.isNaN else {
            r.error("ERR timeout is not a float or out of range")
            return nil
        }
        guard seconds >= 0 else {
            r.error("ERR timeout is negative")
            return nil
        }
        guard seconds * 1000 < 9.0e15 else {
            r.error("ERR timeout is out of range")
            return nil
        }
        return Int(seconds * 1000)
    }

    /// Nothing to pop: the client waits, unless it runs in a transaction.
    private static func block(_ milliseconds: Int, _ r: inout Reply) {
        if Transactions.runningExec { r.nullArray() } else { r.blocked(milliseconds: milliseconds) }
    }

    /// BLPOP and BRPOP key... timeout: [key, element] from the first non-empty list.
    static func blockingPop(_ c: Command, front: Bool, _ r: inout Reply) {
        guard let milliseconds = timeout(c, c.count - 1, &r) else { return }
        for index in 1..<(c.count - 1) {
            let key = c.bytes(index)
            guard let value = Keyspace.live(key)?.value else { continue }
            guard case .list(let list) = value else { return r.error(wrongType) }
            let element = front ? list[0] : list[list.count - 1]
            guard r.makeRoom(for: Reply.arrayBytes + Reply.bulkBytes(key.count) + Reply.bulkBytes(element.count)) else {
                return r.error(outOfMemory)
            }
            _ = Keyspace.entries[key]?.value.withList { front ? $0.popFront() : $0.popBack() }
            Keyspace.dropIfEmptied(key)
            r.array(2)
            r.bulk(key)
            return r.bulk(element)
        }
        block(milliseconds, &r)
    }

    /// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, and BRPOPLPUSH source
    /// destination timeout (BLMOVE ... RIGHT LEFT).
    static func blockingMove(_ c: Command, _ r: inout Reply) {
        let directions: (fromFront: Bool, toFront: Bool)
        if c.isArgument(0, "brpoplpush") {
            directions = (false, true)
        } else {
            guard let given = lmoveDirections(c) else { return r.error("ERR syntax error") }
            directions = given
        }
        guard let milliseconds = timeout(c, c.count - 1, &r) else { return }
        guard Keyspace.live(c.bytes(1)) != nil else { return block(milliseconds, &r) }
        lmove(c, fromFront: directions.fromFront, toFront: directions.toFront, &r)
    }

    /// BLMPOP and BZMPOP timeout numkeys key... WHERE [COUNT count]: LMPOP and ZMPOP after
    /// the timeout.
    static func blockingMultiPop(_ c: Command, sorted: Bool, _ r: inout Reply) {
        guard let milliseconds = timeout(c, 1, &r) else { return }
        let rest = Command(c, droppingFirst: 1)
        if sorted {
            zmpop(rest, &r) { block(milliseconds, &$0) }
        } else {
            lmpop(rest, &r) { block(milliseconds, &$0) }
        }
    }

    /// BZPOPMIN and BZPOPMAX key... timeout: [key, member, score] from the first non-empty
    /// sorted set.
    static func blockingSortedPop(_ c: Command, lowest: Bool, _ r: inout Reply) {
        guard let milliseconds = timeout(c, c.count - 1, &r) else { return }
        for index in 1..<(c.count - 1) {
            let key = c.bytes(index)
            guard let value = Keyspace.live(key)?.value else { continue }
            guard case .sortedSet(let set) = value else { return r.error(wrongType) }
            var first: SortedSet.Element?
            set.visit(from: 0, limit: 1, reversed: !lowest) { first = $0 }
            guard let element = first else { continue }
            let score = DoubleText.text(element.score)
            guard r.makeRoom(for: Reply.arrayBytes + Reply.bulkBytes(key.count) + Reply.bulkBytes(element.member.count)
                + Reply.bulkBytes(score.count))
            else { return r.error(outOfMemory) }
            _ = Keyspace.entries[key]?.value.withSortedSet { $0.remove(element.member) }
            Keyspace.dropIfEmptied(key)
            r.array(3)
            r.bulk(key)
            r.bulk(element.member)
            return r.score(element.score)
        }
        block(milliseconds, &r)
    }
}
