import FlexOS

/// The list commands that find, insert and move elements (Redis 7.0's LPOS, LINSERT,
/// LPUSHX, RPUSHX, LMOVE, RPOPLPUSH), with Redis's order of checks.
extension Commands {
    /// LPUSHX and RPUSHX: push only onto a list that exists; its new length, or 0.
    static func pushIfExists(_ c: Command, front: Bool, _ r: inout Reply) {
        guard Keyspace.exists(c.bytes(1)) else { return r.integer(0) }
        push(c, front: front, &r)
    }

    /// LINSERT key BEFORE|AFTER pivot element: the new length, -1 without the pivot, 0
    /// without the key.
    static func linsert(_ c: Command, _ r: inout Reply) {
        let after: Bool
        if c.isArgument(2, "after") { after = true } else if c.isArgument(2, "before") { after = false } else {
            return r.error("ERR syntax error")
        }
        let key = c.bytes(1), pivot = c.bytes(3)
        guard let value = Keyspace.live(key)?.value else { return r.integer(0) }
        guard case .list = value else { return r.error(wrongType) }
        let length = Keyspace.entries[key]?.value.withList { list -> Int in
            guard let position = (0..<list.count).first(where: { list[$0] == pivot }) else { return -1 }
            list.insert(c.bytes(4), at: after ? position + 1 : position)
            return list.count
        }
        r.integer(length ?? -1)
    }

    /// LPOS key element [RANK rank] [COUNT count] [MAXLEN len]: where `element` is.
    static func lpos(_ c: Command, _ r: inout Reply) {
        var rank = 1, count: Int? = nil, maximumLength = 0
        var index = 3
        while index < c.count {
            guard index + 1 < c.count else { return r.error("ERR syntax error") }
            let value = Numbers.integer(c[index + 1])
            if c.isArgument(index, "rank") {
                guard let value, value != Int.min else { return r.error(notInteger) }
                guard value != 0 else {
                    return r.error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
                    )
                }
                rank = value
            } else if c.isArgument(index, "count") {
                guard let value, value >= 0 else { return r.error("ERR COUNT can't be negative") }
                count = value
            } else if c.isArgument(index, "maxlen") {
                guard let value, value >= 0 else { return r.error("ERR MAXLEN can't be negative") }
                maximumLength = value
            } else {
                return r.error("ERR syntax error")
            }
            index += 2
        }
        guard let value = Keyspace.live(c.bytes(1))?.value else { return count == nil ? r.null() : r.array(0) }
        guard case .list(let list) = value else { return r.error(wrongType) }
        let element = c.bytes(2), fromBack = rank < 0
        var found: [Int] = [], matches = 0
        let scanned = maximumLength == 0 ? list.count : min(maximumLength, list.count)
        for step in 0..<scanned {
            let position = fromBack ? list.count - 1 - step : step
            guard list[position] == element else { continue }
            matches += 1
            guard matches >= abs(rank) else { continue }
            found.append(position)
            if count == nil || (count != 0 && found.count >= count!) { break }
        }
        guard count != nil else { return found.first.map { r.integer($0) } ?? r.null() }
        r.array(found.count)
        for position in found { r.integer(position) }
    }

    /// LMOVE source destination LEFT|RIGHT LEFT|RIGHT, and RPOPLPUSH (RIGHT LEFT): the
    /// element moved, or null when the source is missing.
    static func lmove(_ c: Command, fromFront: Bool, toFront: Bool, _ r: inout Reply) {
        let source = c.bytes(1), destination = c.bytes(2)
        guard let value = Keyspace.live(source)?.value else { return r.null() }
        guard case .list = value else { return r.error(wrongType) }
        if let target = Keyspace.live(destination)?.value { guard case .list = target else { return r.error(wrongType) } }
        guard let element = Keyspace.entries[source]?.value.withList({ fromFront ? $0.popFront() : $0.popBack() }) ?? nil
        else { return r.null() }
        Keyspace.dropIfEmptied(source)
        if Keyspace.live(destination) == nil { Keyspace.entries[destination] = Entry(value: .list(ByteDeque())) }
        _ = Keyspace.entries[destination]?.value.withList { toFront ? $0.pushFront(element) : $0.pushBack(element) }
        r.bulk(element)
    }

    /// LMOVE's two directions, or nil when one is not LEFT or RIGHT.
    static func lmoveDirections(_ c: Command) -> (fromFront: Bool, toFront: Bool)? {
        func side(_ index: Int) -> Bool? {
            c.isArgument(index, "left") ? true : c.isArgument(index, "right") ? false : nil
        }
        guard let from = side(3), let to = side(4) else { return nil }
        return (from, to)
    }
}
