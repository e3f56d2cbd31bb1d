import FlexOS

/// SCAN, SSCAN, HSCAN and ZSCAN. SCAN walks the keyspace a shard of its 256 at a time (the
/// cursor is the next shard): a key that lives through the whole iteration is in one shard
/// all along, so it is returned, and once; COUNT says how many keys to look at before the
/// reply (whole shards, so at least that many). SSCAN, HSCAN and ZSCAN return a whole
/// collection with the cursor 0, as Redis does for its small encodings.
enum ScanCommands {
    /// MATCH, COUNT and (SCAN only) TYPE.
    struct Options {
        var pattern: [UInt8]?
        var count = 10
        var type: [UInt8]?

        /// The options from argument `first` on; nil with the error replied.
        init?(_ c: Command, from first: Int, allowsType: Bool, _ r: inout Reply) {
            var index = first
            while index < c.count {
                guard index + 1 < c.count else {
                    r.error("ERR syntax error")
                    return nil
                }
                if c.isArgument(index, "count") {
                    guard let count = Numbers.integer(c[index + 1]) else {
                        r.error(Commands.notInteger)
                        return nil
                    }
                    guard count >= 1 else {
                        r.error("ERR syntax error")
                        return nil
                    }
                    self.count = count
                } else if c.isArgument(index, "match") {
                    pattern = c.bytes(index + 1)
                } else if allowsType && c.isArgument(index, "type") {
                    type = lowercased(c[index + 1])
                } else {
                    r.error("ERR syntax error")
                    return nil
                }
                index += 2
            }
        }

        func matches(_ text: [UInt8]) -> Bool { pattern.map { Glob.matches($0[...], text[...]) } ?? true }
    }

    /// Redis's cursor, as strtoul reads it: decimal digits below 2^64, perhaps after a sign
    /// (`-1` is 2^64 - 1); nil with the error replied.
    static func cursor(_ c: Command, _ index: Int, _ r: inout Reply) -> UInt64? {
        let text = c[index]
        let negative = text.first == UInt8(ascii: "-")
        let digits = text.first == UInt8(ascii: "-") || text.first == UInt8(ascii: "+") ? text.dropFirst() : text[...]
        var value: UInt64? = digits.isEmpty ? nil : 0
        for digit in digits {
            guard let current = value, digit >= 48, digit <= 57 else { value = nil; break }
            let (times, overflow) = current.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(digit - 48))
            value = overflow || carry ? nil : sum
        }
        guard let value else {
            r.error("ERR invalid cursor")
            return nil
        }
        return negative ? 0 &- value : value
    }

    static func scan(_ c: Command, _ r: inout Reply) {
        guard let cursor = cursor(c, 1, &r), let options = Options(c, from: 2, allowsType: true, &r) else { return }
        var shard = Int(min(cursor, UInt64(KeyTable.shardCount)))
        var looked = 0, found: [[UInt8]] = []
        let now = Clock.milliseconds
        while shard < KeyTable.shardCount && looked < options.count {
            Keyspace.entries.forEach(inShard: shard) { key, entry in
                looked += 1
                guard entry.expiresAt == 0 || entry.expiresAt > now, options.matches(key) else { return }
                if let type = options.type, type != typeName(entry.value) { return }
                found.append(key)
            }
            shard += 1
        }
        reply(cursor: shard >= KeyTable.shardCount ? 0 : shard, found, &r)
    }

    static func sscan(_ c: Command, _ r: inout Reply) {
        collection(c, of: "set", &r) { value, options in
            guard case .set(let set) = value else { return [] }
            return set.filter(options.matches)
        }
    }

    static func hscan(_ c: Command, _ r: inout Reply) {
        collection(c, of: "hash", &r) { value, options in
            guard case .hash(let hash) = value else { return [] }
            return hash.filter { options.matches($0.key) }.flatMap { [$0.key, $0.value] }
        }
    }

    static func zscan(_ c: Command, _ r: inout Reply) {
        collection(c, of: "zset", &r) { value, options in
            guard case .sortedSet(let set) = value else { return [] }
            return set.scoresByMember.filter { options.matches($0.key) }.flatMap { [$0.key, DoubleText.text($0.value)] }
        }
    }

    /// xSCAN KEY CURSOR [MATCH] [COUNT], in Redis's order of checks: the cursor, then an
    /// absent key answers an empty scan (before the options are read), then the type, then
    /// the options. `elements` gives the reply's elements from a value of type `type`.
    private static func collection(
        _ c: Command, of type: StaticString, _ r: inout Reply, _ elements: (Value, Options) -> [[UInt8]]
    ) {
        guard cursor(c, 2, &r) != nil else { return }
        guard let value = Keyspace.live(c.bytes(1))?.value else { return reply(cursor: 0, [], &r) }
        guard typeName(value) == bytes(type) else { return r.error(Commands.wrongType) }
        guard let options = Options(c, from: 3, allowsType: false, &r) else { return }
        reply(cursor: 0, elements(value, options), &r)
    }

    private static func reply(cursor: Int, _ found: [[UInt8]], _ r: inout Reply) {
        var bytes = Reply.arrayBytes * 2 + Reply.bulkBytes(20)
        for element in found { bytes &+= Reply.bulkBytes(element.count) }
        guard r.makeRoom(for: bytes) else { return r.error("OOM the shared heap cannot hold this reply") }
        r.array(2)
        r.bulk(Array(String(cursor).utf8))
        r.array(found.count)
        for element in found { r.bulk(element) }
    }

    private static func typeName(_ value: Value) -> [UInt8] {
        switch value {
        case .string: return bytes("string")
        case .list: return bytes("list")
        case .set: return bytes("set")
        case .hash: return bytes("hash")
        case .sortedSet: return bytes("zset")
        }
    }
}
