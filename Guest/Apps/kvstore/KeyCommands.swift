import FlexOS

/// The generic keyspace commands that move, count and find keys (Redis 7.0's RENAME,
/// RENAMENX, UNLINK, TOUCH, KEYS).
extension Commands {
    /// RENAME and RENAMENX: the value and its expiry move to the new name. RENAME replaces
    /// what the new name held; RENAMENX answers 0 and leaves both when it holds anything.
    static func rename(_ c: Command, onlyIfFree: Bool, _ r: inout Reply) {
        let source = c.bytes(1), target = c.bytes(2)
        guard let entry = Keyspace.live(source) else { return r.error("ERR no such key") }
        if onlyIfFree {
            // Redis answers 0 for a key renamed onto itself: the new name exists.
            guard source != target, !Keyspace.exists(target) else { return r.integer(0) }
        }
        if source != target {
            Keyspace.entries[source] = nil
            Keyspace.entries[target] = entry
        }
        if onlyIfFree { r.integer(1) } else { r.simple("OK") }
    }

    /// COPY source destination [DB 0] [REPLACE]: 1 when the value (and its expiry) was
    /// copied, 0 when the source is missing or the destination exists without REPLACE. The
    /// copy has storage of its own from the start, charged now: a copy that shared it would
    /// allocate the whole value later, on its first change, uncharged.
    static func copy(_ c: Command, _ r: inout Reply) {
        var replace = false, database = 0
        var index = 3
        while index < c.count {
            if c.isArgument(index, "replace") {
                replace = true
            } else if c.isArgument(index, "db") && index + 1 < c.count {
                guard let number = Numbers.integer(c[index + 1]) else {
                    return r.error("ERR value is not an integer or out of range")
                }
                database = number
                index += 1
            } else {
                return r.error("ERR syntax error")
            }
            index += 1
        }
        // The appliance has one database (Redis has 16: DB 1 to 15 copy there).
        guard database == 0 else { return r.error("ERR DB index is out of range") }
        let source = c.bytes(1), destination = c.bytes(2)
        guard source != destination else { return r.error("ERR source and destination objects are the same") }
        guard let entry = Keyspace.live(source) else { return r.integer(0) }
        guard replace || !Keyspace.exists(destination) else { return r.integer(0) }
        let cost = MemoryCost.key(destination.count) &+ MemoryCost.value(entry.value)
        guard Keyspace.hasRoom(for: cost, growth: MemoryCost.Pieces(Keyspace.entries.growth(adding: destination))) else {
            return r.error(outOfMemory)
        }
        Keyspace.entries[destination] = Entry(value: entry.value.copied(), hint: entry.hint, expiresAt: entry.expiresAt)
        r.integer(1)
    }

    /// RANDOMKEY: a live key, or null when there is none. Expired keys met on the way go.
    static func randomkey(_ c: Command, _ r: inout Reply) {
        while let key = Keyspace.entries.randomKey() {
            if Keyspace.live(key) != nil { return r.bulk(key) }
        }
        r.null()
    }

    /// TOUCH: how many of the keys exist (the appliance keeps no access times to update).
    static func touch(_ c: Command, _ r: inout Reply) {
        exists(c, &r)
    }

    /// KEYS: every live key that matches the glob pattern, in no particular order.
    static func keys(_ c: Command, _ r: inout Reply) {
        let pattern = c.bytes(1)
        var found: [[UInt8]] = []
        let now = Clock.milliseconds
        Keyspace.entries.forEach { key, entry in
            if (entry.expiresAt == 0 || entry.expiresAt > now) && Glob.matches(pattern[...], key[...]) { found.append(key) }
        }
        r.array(found.count)
        for key in found { r.bulk(key) }
    }
}

/// Redis's glob patterns (stringmatchlen): `*`, `?`, `[abc]`, `[^abc]`, `[a-z]`, and `\`
/// before a character that stands for itself.
enum Glob {
    /// Matched left to right; on a mismatch only the last `*` takes one more character
    /// (the greedy rule, which gives the same answers as trying every split): at most
    /// pattern length times text length steps, where trying every split of every `*` is
    /// exponential (`*a*a*a...b` against a long key stalled the appliance).
    static func matches(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var pattern = pattern, text = text
        var lastStar: (pattern: ArraySlice<UInt8>, text: ArraySlice<UInt8>)? = nil
        while true {
            if pattern.first == UInt8(ascii: "*") {
                while pattern.first == UInt8(ascii: "*") { pattern = pattern.dropFirst() }
                if pattern.isEmpty { return true }
                lastStar = (pattern, text)
                continue
            }
            if pattern.isEmpty && text.isEmpty { return true }
            if let (restOfPattern, restOfText) = matchOne(pattern, text) {
                (pattern, text) = (restOfPattern, restOfText)
                continue
            }
            guard let star = lastStar, !star.text.isEmpty else { return false }
            lastStar = (star.pattern, star.text.dropFirst())
            (pattern, text) = lastStar!
        }
    }

    /// The pattern's first element (not `*`) against the text's first character: what is
    /// left of both when it matches.
    private static func matchOne(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>)
        -> (ArraySlice<UInt8>, ArraySlice<UInt8>)?
    {
        guard let symbol = pattern.first, let character = text.first else { return nil }
        switch symbol {
        case UInt8(ascii: "?"):
            return (pattern.dropFirst(), text.dropFirst())
        case UInt8(ascii: "["):
            let (matched, rest) = bracket(pattern.dropFirst(), character)
            return matched ? (rest, text.dropFirst()) : nil
        default:
            var pattern = pattern
            var literal = symbol
            if symbol == UInt8(ascii: "\\"), pattern.count >= 2 {
                pattern = pattern.dropFirst()
                literal = pattern.first!
            }
            return character == literal ? (pattern.dropFirst(), text.dropFirst()) : nil
        }
    }

    /// Whether `character` is in the class that starts at `pattern` (just after `[`), and
    /// what follows the class. An unclosed class runs to the pattern's end, as in Redis.
    private static func bracket(_ pattern: ArraySlice<UInt8>, _ character: UInt8) -> (Bool, ArraySlice<UInt8>) {
        var pattern = pattern
        let negated = pattern.first == UInt8(ascii: "^")
        if negated { pattern = pattern.dropFirst() }
        var matched = false
        while let symbol = pattern.first, symbol != UInt8(ascii: "]") {
            if symbol == UInt8(ascii: "\\"), pattern.count >= 2 {
                pattern = pattern.dropFirst()
                if pattern.first == character { matched = true }
                pattern = pattern.dropFirst()
            } else if pattern.count >= 3, pattern[pattern.startIndex + 1] == UInt8(ascii: "-") {
                var low = symbol, high = pattern[pattern.startIndex + 2]
                if low > high { swap(&low, &high) }
                if character >= low && character <= high { matched = true }
                pattern = pattern.dropFirst(3)
            } else {
                if symbol == character { matched = true }
                pattern = pattern.dropFirst()
            }
        }
        if !pattern.isEmpty { pattern = pattern.dropFirst() }  // the closing ]
        return (negated ? !matched : matched, pattern)
    }
}

/// OBJECT ENCODING, REFCOUNT, IDLETIME, FREQ and HELP. ENCODING names the encoding Redis
/// 7.0 would have chosen (Encodings.swift).
extension Commands {
    static func object(_ c: Command, _ r: inout Reply) {
        let subcommands: [StaticString] = ["help", "encoding", "refcount", "idletime", "freq"]
        guard let subcommand = subcommands.firstIndex(where: { c.isArgument(1, $0) }) else {
            return r.error(bytes("ERR unknown subcommand '") + Array(c[1].prefix(128)) + bytes("'. Try OBJECT HELP."))
        }
        guard c.count == (subcommand == 0 ? 2 : 3) else {
            return r.error(bytes("ERR wrong number of arguments for 'object|") + lowercased(c[1]) + bytes("' command"))
        }
        if subcommand == 0 {
            let lines: [StaticString] = [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.", "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.", "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.", "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified", "    <key>.",
                "HELP", "    Prints this help."
            ]
            r.array(lines.count)
            for line in lines { r.simple(line) }
            return
        }
        guard let entry = Keyspace.live(c.bytes(2)) else { return r.null() }
        if c.isArgument(1, "encoding") { return r.bulk(encoding(of: entry)) }
        if c.isArgument(1, "refcount") {
            // Redis shares one object among the small integers 0...9999.
            guard case .string(let text) = entry.value, entry.hint == .contents, let value = sharedInteger(text),
                value < 10_000
            else {
                return r.integer(1)
            }
            return r.integer(Int(Int32.max))
        }
        if c.isArgument(1, "idletime") { return r.integer(0) }  // no access times are kept (as TOUCH says)
        r.error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
        )
    }

    /// A value Redis would store as an integer: its canonical decimal form (no sign but
    /// `-`, no leading zeros) of at most 20 characters.
    static func sharedInteger(_ text: [UInt8]) -> Int? {
        guard text.count <= 20, let value = Numbers.integer(text), Numbers.text(value) == text, value >= 0 else {
            return nil
        }
        return value
    }
}
