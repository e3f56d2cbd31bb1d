import FlexOS

/// Redis 7.0's set algebra: SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD and SMOVE.
/// A missing key is an empty set; any other type is WRONGTYPE, found in key order.
extension Commands {
    enum SetOperation { case intersection, union, difference }

    /// The sets named by arguments `keys` (nil for a missing key), or nil when one holds
    /// another type.
    private static func sets(_ c: Command, _ keys: Range<Int>) -> [Set<[UInt8]>?]? {
        var sets: [Set<[UInt8]>?] = []
        for index in keys {
            switch Keyspace.live(c.bytes(index))?.value {
            case nil: sets.append(nil)
            case .set(let set)?: sets.append(set)
            default: return nil
            }
        }
        return sets
    }

    private static func combine(_ sets: [Set<[UInt8]>?], _ operation: SetOperation) -> Set<[UInt8]> {
        guard var result = sets.first.map({ $0 ?? [] }) else { return [] }
        for set in sets.dropFirst() {
            switch operation {
            case .intersection: result.formIntersection(set ?? [])
            case .union: result.formUnion(set ?? [])
            case .difference: result.subtract(set ?? [])
            }
            if result.isEmpty && operation != .union { break }
        }
        return result
    }

    /// SINTER, SUNION, SDIFF: the members, in no particular order.
    static func setAlgebra(_ c: Command, _ operation: SetOperation, _ r: inout Reply) {
        guard let sets = sets(c, 1..<c.count) else { return r.error(wrongType) }
        let result = combine(sets, operation)
        guard r.makeRoom(for: result.reduce(Reply.arrayBytes) { $0 + Reply.bulkBytes($1.count) }) else {
            return r.error(outOfMemory)
        }
        r.set(result.count)
        for member in result { r.bulk(member) }
    }

    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the result replaces the destination (of any
    /// type); an empty one deletes it. Answers the result's size.
    static func storeSetAlgebra(_ c: Command, _ operation: SetOperation, _ r: inout Reply) {
        guard let sets = sets(c, 2..<c.count) else { return r.error(wrongType) }
        let result = combine(sets, operation)
        let cost = result.reduce(0) { $0 + MemoryCost.member(of: .set, first: $1.count, second: 0) }
        guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(cost)) else { return r.error(outOfMemory) }
        let destination = c.bytes(1)
        Keyspace.entries[destination] = result.isEmpty ? nil : Entry(value: .set(result))
        r.integer(result.count)
    }

    /// SINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, counted up
    /// to `limit` when it is not 0.
    static func sintercard(_ c: Command, _ r: inout Reply) {
        // Redis gives these messages also for a number that is not one.
        guard let keyCount = Numbers.integer(c[1]), keyCount > 0 else {
            return r.error("ERR numkeys should be greater than 0")
        }
        guard keyCount <= c.count - 2 else { return r.error("ERR Number of keys can't be greater than number of args") }
        var limit = 0
        var index = 2 + keyCount
        while index < c.count {
            guard c.isArgument(index, "limit"), index + 1 < c.count else { return r.error("ERR syntax error") }
            guard let value = Numbers.integer(c[index + 1]), value >= 0 else {
                return r.error("ERR LIMIT can't be negative")
            }
            limit = value
            index += 2
        }
        guard let sets = sets(c, 2..<(2 + keyCount)) else { return r.error(wrongType) }
        let count = combine(sets, .intersection).count
        r.integer(limit == 0 ? count : min(count, limit))
    }

    /// SMOVE source destination member: 1 when the member moved (or was already in a source
    /// that is the destination), 0 when the source does not hold it.
    static func smove(_ c: Command, _ r: inout Reply) {
        let source = c.bytes(1), destination = c.bytes(2), member = c.bytes(3)
        // As Redis: a missing source answers 0 before either type is looked at.
        guard Keyspace.exists(source) else { return r.integer(0) }
        guard let sets = sets(c, 1..<3) else { return r.error(wrongType) }
        guard let from = sets[0], from.contains(member) else { return r.integer(0) }
        guard source != destination else { return r.integer(1) }
        guard Keyspace.hasRoom(for: MemoryCost.member(of: .set, first: member.count, second: 0)) else {
            return r.error(outOfMemory)
        }
        _ = Keyspace.entries[source]?.value.withSet { $0.remove(member) }
        Keyspace.dropIfEmptied(source)
        let hint = Keyspace.live(destination)?.hint
        if sets[1] == nil { Keyspace.entries[destination] = Entry(value: .set([])) }
        let count = Keyspace.entries[destination]?.value.withSet { set -> Int in
            set.insert(member)
            return set.count
        } ?? 0
        if hint != .large && outgrowsIntset(count: count, c, members: 3...3) { markLarge(destination) }
        r.integer(1)
    }
}
