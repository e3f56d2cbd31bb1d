import FlexOS

/// Redis 7.0's sorted-set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD.
/// Inputs may be sorted sets or plain sets (whose members score 1); a missing key is empty.
extension Commands {
    /// How the scores of a member found in several inputs combine (AGGREGATE).
    enum Aggregate { case sum, minimum, maximum }

    /// The parsed arguments: the inputs with their weights, how scores combine, and the
    /// options only some forms take.
    struct SortedSetOperation {
        var inputs: [[[UInt8]: Double]] = []
        var weights: [Double] = []
        var aggregate = Aggregate.sum
        var withScores = false
        var limit = 0
    }

    /// Parses `numkeys key... options` from argument `first` on, as Redis does: the key
    /// count, then the keys' types, then the options; nil, with the error written, when any
    /// is wrong. `store`: no WITHSCORES; `cardinality`: only LIMIT; `weighted`: WEIGHTS and
    /// AGGREGATE.
    private static func parseOperation(
        _ c: Command, from first: Int, weighted: Bool, store: Bool, cardinality: Bool, _ r: inout Reply
    ) -> SortedSetOperation? {
        guard let keyCount = Numbers.integer(c[first]) else {
            r.error("ERR value is not an integer or out of range")
            return nil
        }
        guard keyCount >= 1 else {
            r.error(bytes("ERR at least 1 input key is needed for '") + lowercased(c[0]) + bytes("' command"))
            return nil
        }
        guard keyCount <= c.count - first - 1 else {
            r.error("ERR syntax error")
            return nil
        }
        var operation = SortedSetOperation()
        for index in (first + 1)..<(first + 1 + keyCount) {
            switch Keyspace.live(c.bytes(index))?.value {
            case nil: operation.inputs.append([:])
            case .sortedSet(let set)?: operation.inputs.append(set.scoresByMember)
            case .set(let set)?:
                var scores: [[UInt8]: Double] = [:]
                scores.reserveCapacity(set.count)
                for member in set { scores[member] = 1 }
                operation.inputs.append(scores)
            default:
                r.error(wrongType)
                return nil
            }
        }
        operation.weights = [Double](repeating: 1, count: keyCount)
        var index = first + 1 + keyCount
        while index < c.count {
            let remaining = c.count - index
            if weighted && remaining > keyCount && c.isArgument(index, "weights") {
                for key in 0..<keyCount {
                    guard let weight = Numbers.score(c[index + 1 + key]), !weight.isNaN else {
                        r.error("ERR weight value is not a float")
                        return nil
                    }
                    operation.weights[key] = weight
                }
                index += 1 + keyCount
            } else if weighted && remaining >= 2 && c.isArgument(index, "aggregate") {
                if c.isArgument(index + 1, "sum") {
                    operation.aggregate = .sum
                } else if c.isArgument(index + 1, "min") {
                    operation.aggregate = .minimum
                } else if c.isArgument(index + 1, "max") {
                    operation.aggregate = .maximum
                } else {
                    r.error("ERR syntax error")
                    return nil
                }
                index += 2
            } else if !store && !cardinality && c.isArgument(index, "withscores") {
                operation.withScores = true
                index += 1
            } else if cardinality && remaining >= 2 && c.isArgument(index, "limit") {
                guard let limit = Numbers.integer(c[index + 1]), limit >= 0 else {
                    r.error("ERR LIMIT can't be negative")
                    return nil
                }
                operation.limit = limit
                index += 2
            } else {
                r.error("ERR syntax error")
                return nil
            }
        }
        return operation
    }

    /// A weighted score: infinity times zero is 0, as in Redis.
    private static func weighted(_ score: Double, _ weight: Double) -> Double {
        let product = score * weight
        return product.isNaN ? 0 : product
    }

    private static func combine(_ a: Double, _ b: Double, _ aggregate: Aggregate) -> Double {
        switch aggregate {
        case .sum:
            let sum = a + b
            return sum.isNaN ? 0 : sum
        case .minimum: return min(a, b)
        case .maximum: return max(a, b)
        }
    }

    /// The result's members and scores. Redis combines the inputs smallest first (for
    /// ZUNION and ZINTER), which decides a sum's rounding and an infinite sum's sign.
    private static func evaluate(_ operation: SortedSetOperation, _ kind: SetOperation) -> [[UInt8]: Double] {
        let inputs = operation.inputs
        guard kind != .difference else {
            var result = inputs[0]
            for input in inputs.dropFirst() {
                for member in input.keys { result[member] = nil }
                if result.isEmpty { break }
            }
            return result
        }
        let order = inputs.indices.sorted { inputs[$0].count < inputs[$1].count }
        var result: [[UInt8]: Double] = [:]
        if kind == .union {
            for index in order {
                for (member, score) in inputs[index] {
                    let value = weighted(score, operation.weights[index])
                    result[member] = result[member].map { combine($0, value, operation.aggregate) } ?? value
                }
            }
            return result
        }
        for (member, score) in inputs[order[0]] {
            var value = weighted(score, operation.weights[order[0]])
            var inAll = true
            for index in order.dropFirst() {
                guard let other = inputs[index][member] else {
                    inAll = false
                    break
                }
                value = combine(value, weighted(other, operation.weights[index]), operation.aggregate)
            }
            if inAll { result[member] = value }
        }
        return result
    }

    /// ZUNION, ZINTER, ZDIFF numkeys key... [WEIGHTS ...] [AGGREGATE ...] [WITHSCORES]:
    /// the result in order of score, then member.
    static func zsetAlgebra(_ kind: SetOperation) -> Handler {
        { c, r in
            guard let operation = parseOperation(c, from: 1, weighted: kind != .difference, store: false, cardinality: false, &r)
            else { return }
            // Ordered through a sorted set; the scores as computed (a -0 stays -0, as in Redis).
            let result = evaluate(operation, kind)
            var set = SortedSet()
            for (member, score) in result { _ = set.add(member, score: score) }
            let text = { (element: SortedSet.Element) in DoubleText.text(result[element.member] ?? element.score) }
            var bytes = Reply.arrayBytes
            set.visit(from: 0, limit: set.count, reversed: false) { element in
                bytes &+= Reply.bulkBytes(element.member.count)
                if operation.withScores { bytes &+= Reply.bulkBytes(text(element).count) }
            }
            guard r.makeRoom(for: bytes) else { return r.error(outOfMemory) }
            operation.withScores ? r.pairs(set.count) : r.array(set.count)
            set.visit(from: 0, limit: set.count, reversed: false) { element in
                r.bulk(element.member)
                if operation.withScores { r.score(text: text(element)) }
            }
        }
    }

    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE destination numkeys key...: the result replaces
    /// the destination (an empty one deletes it); answers its size.
    static func zsetAlgebraStore(_ kind: SetOperation) -> Handler {
        { c, r in
            guard let operation = parseOperation(c, from: 2, weighted: kind != .difference, store: true, cardinality: false, &r)
            else { return }
            let result = evaluate(operation, kind)
            let destination = c.bytes(1)
            var cost = MemoryCost.key(destination.count)
            for member in result.keys { cost &+= MemoryCost.member(of: .sortedSet, first: 0, second: member.count) }
            guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(cost)) else { return r.error(outOfMemory) }
            var set = SortedSet()
            for (member, score) in result { _ = set.add(member, score: score) }
            Keyspace.entries[destination] = result.isEmpty ? nil : Entry(value: .sortedSet(set))
            r.integer(result.count)
        }
    }

    /// ZINTERCARD numkeys key... [LIMIT limit]: the intersection's size, counted up to
    /// `limit` when it is not 0.
    static func zintercard(_ c: Command, _ r: inout Reply) {
        guard let operation = parseOperation(c, from: 1, weighted: false, store: true, cardinality: true, &r) else {
            return
        }
        let count = evaluate(operation, .intersection).count
        r.integer(operation.limit == 0 ? count : min(count, operation.limit))
    }
}
