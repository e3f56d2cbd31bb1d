import FlexOS

/// SORT and SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC | DESC]
/// [ALPHA] [STORE destination] (STORE: SORT only), as Redis 7.0 answers them: the elements
/// of a list, set or sorted set ordered as numbers (ties by their bytes) or, with ALPHA, as
/// bytes; BY and GET read other keys, `*` replaced by the element (`key->field` reads a
/// hash's field, `#` is the element itself); a BY pattern without `*` leaves the order.
extension Commands {
    static func sort(readOnly: Bool) -> Handler {
        { c, r in sort(c, readOnly: readOnly, &r) }
    }

    private struct SortRequest {
        var descending = false, alpha = false, keepOrder = false
        var by: [UInt8]?
        var offset = 0, count = -1
        var gets: [[UInt8]] = []
        var destination: [UInt8]?
    }

    private static func sort(_ c: Command, readOnly: Bool, _ r: inout Reply) {
        guard let request = sortRequest(c, readOnly: readOnly, &r) else { return }
        let value = Keyspace.live(c.bytes(1))?.value
        let size: Int
        switch value {
        case nil: size = 0
        case .list(let list)?: size = list.count
        case .set(let set)?: size = set.count
        case .sortedSet(let sorted)?: size = sorted.count
        default: return r.error(wrongType)
        }
        // The elements, their weights, the order and the output are made in the heap's
        // headroom (about 64 bytes an element): a collection too large for it is -OOM, not a trap.
        let (working, tooMany) = size.multipliedReportingOverflow(by: 64)
        guard !tooMany, PrivateHeap.canAllocate(working) else { return r.error(outOfMemory) }
        var elements: [[UInt8]] = []
        switch value {
        case .list(let list)?: elements = (0..<list.count).map { list[$0] }
        case .set(let set)?: elements = Array(set)
        case .sortedSet(let sorted)?:
            sorted.visit(from: 0, limit: sorted.count, reversed: false) { elements.append($0.member) }
        default: break
        }
        var keepOrder = request.keepOrder
        var alpha = request.alpha
        // A set stored unsorted would store its table's order: Redis sorts it as bytes instead.
        if keepOrder, request.destination != nil, case .set? = value { (keepOrder, alpha) = (false, true) }
        // Unsorted, a list or sorted set keeps its order, read from the end for DESC.
        if keepOrder && request.descending { elements.reverse() }
        if !keepOrder {
            guard let ordered = sorted(elements, request, alpha: alpha) else {
                return r.error("ERR One or more scores can't be converted into double")
            }
            elements = ordered
        }
        // LIMIT as Redis clamps it.
        let start = max(request.offset, 0)
        let (end, overflow) = start.addingReportingOverflow(request.count)
        let window = start >= elements.count ? 0..<0 : start..<(request.count < 0 || overflow ? elements.count : min(elements.count, end))
        let chosen = elements[window]
        let (outputBytes, tooLarge) = chosen.count.multipliedReportingOverflow(by: max(request.gets.count, 1) * 16)
        guard !tooLarge, PrivateHeap.canAllocate(outputBytes) else { return r.error(outOfMemory) }
        var output: [[UInt8]?] = []
        for element in chosen {
            if request.gets.isEmpty { output.append(element) }
            for pattern in request.gets { output.append(lookUp(pattern, element)) }
        }
        if let destination = request.destination { return store(output, in: destination, &r) }
        let bytes = output.reduce(Reply.arrayBytes) { $0 &+ Reply.bulkBytes($1?.count ?? 0) }
        guard r.makeRoom(for: bytes) else { return r.error(outOfMemory) }
        r.array(output.count)
        for value in output { if let value { r.bulk(value) } else { r.null() } }
    }

    /// The options, read as Redis reads them; nil with the error replied.
    private static func sortRequest(_ c: Command, readOnly: Bool, _ r: inout Reply) -> SortRequest? {
        var request = SortRequest()
        var index = 2
        while index < c.count {
            let left = c.count - index - 1
            if c.isArgument(index, "asc") { request.descending = false }
            else if c.isArgument(index, "desc") { request.descending = true }
            else if c.isArgument(index, "alpha") { request.alpha = true }
            else if c.isArgument(index, "limit") && left >= 2 {
                guard let offset = Numbers.integer(c[index + 1]), let count = Numbers.integer(c[index + 2]) else {
                    r.error(notInteger)
                    return nil
                }
                (request.offset, request.count) = (offset, count)
                index += 2
            } else if !readOnly && c.isArgument(index, "store") && left >= 1 {
                request.destination = c.bytes(index + 1)
                index += 1
            } else if c.isArgument(index, "by") && left >= 1 {
                request.by = c.bytes(index + 1)
                if !c.bytes(index + 1).contains(UInt8(ascii: "*")) { request.keepOrder = true }
                index += 1
            } else if c.isArgument(index, "get") && left >= 1 {
                request.gets.append(c.bytes(index + 1))
                index += 1
            } else {
                r.error("ERR syntax error")
                return nil
            }
            index += 1
        }
        return request
    }

    /// The elements in the request's order; nil when a weight is not a number.
    private static func sorted(_ elements: [[UInt8]], _ request: SortRequest, alpha: Bool) -> [[UInt8]]? {
        let by = request.keepOrder ? nil : request.by
        let keys: [[UInt8]?] = elements.map { element in by.map { lookUp($0, element) } ?? element }
        var order = Array(elements.indices)
        if alpha {
            // Bytes; a missing BY value before any other (after, in DESC).
            func compare(_ x: Int, _ y: Int) -> Bool {
                guard let a = keys[x], let b = keys[y] else { return keys[x] == nil && keys[y] != nil }
                return a.lexicographicallyPrecedes(b)
            }
            order.sort { x, y in request.descending ? compare(y, x) : compare(x, y) }
        } else {
            var scores: [Double] = []
            for key in keys {
                guard let key else { scores.append(0); continue }
                guard let score = sortWeight(key) else { return nil }
                scores.append(score)
            }
            order.sort { x, y in
                let ascending =
                    scores[x] != scores[y]
                    ? scores[x] < scores[y] : elements[x].lexicographicallyPrecedes(elements[y])
                let descending =
                    scores[x] != scores[y]
                    ? scores[x] > scores[y] : elements[y].lexicographicallyPrecedes(elements[x])
                return request.descending ? descending : ascending
            }
        }
        return order.map { elements[$0] }
    }

    /// A weight as strtod reads it for SORT: leading spaces skipped, nothing after the
    /// number, an empty one is 0, NaN and anything strtod calls out of range refused.
    /// (Redis looks at errno without clearing it first, so after one such weight it may
    /// refuse good ones too; the store does not copy that.)
    private static func sortWeight(_ text: [UInt8]) -> Double? {
        let trimmed = text.drop { $0 == 32 || ($0 >= 9 && $0 <= 13) }
        guard !trimmed.isEmpty else { return 0 }
        guard let (value, outOfRange) = Array(trimmed).withUnsafeBufferPointer({ Numbers.strtod($0) }), !outOfRange else {
            return nil
        }
        return value
    }

    /// The value a BY or GET pattern names for `element`: `#` is the element; the first `*`
    /// is replaced by it; `key->field` reads a field of a hash; nil for no `*`, a missing key
    /// or field, or a key of another type.
    static func lookUp(_ pattern: [UInt8], _ element: [UInt8]) -> [UInt8]? {
        if pattern == [UInt8(ascii: "#")] { return element }
        guard let star = pattern.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        var end = pattern.count
        var field: [UInt8]?
        var index = star + 1
        while index + 1 < pattern.count {
            if pattern[index] == UInt8(ascii: "-") && pattern[index + 1] == UInt8(ascii: ">") {
                if index + 2 < pattern.count {
                    field = Array(pattern[(index + 2)...])
                    end = index
                }
                break
            }
            index += 1
        }
        let key = Array(pattern[..<star]) + element + Array(pattern[(star + 1)..<end])
        switch (Keyspace.live(key)?.value, field) {
        case (.string(let value)?, nil): return value
        case (.hash(let hash)?, let field?): return hash[field]
        default: return nil
        }
    }

    /// STORE: the output as a list under `destination` (a missing GET stores an empty
    /// string), replacing what was there; an empty output deletes it. Answers its length.
    private static func store(_ output: [[UInt8]?], in destination: [UInt8], _ r: inout Reply) {
        var cost = MemoryCost.key(destination.count)
        for value in output { cost &+= MemoryCost.member(of: .list, first: value?.count ?? 0, second: 0) }
        guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(cost)) else { return r.error(outOfMemory) }
        var list = ByteDeque()
        for value in output { list.pushBack(value ?? []) }
        Keyspace.entries[destination] = output.isEmpty ? nil : Entry(value: .list(list))
        r.integer(output.count)
    }
}
