import FlexOS

/// What OBJECT ENCODING cannot read off a value. Redis 7.0 picks a compact encoding while a
/// value is small and never goes back; it writes a string that APPEND, SETRANGE, SETBIT,
/// BITFIELD or BITOP made as `raw`, and INCRBYFLOAT's result as text, never as `int`.
enum EncodingHint: UInt8 {
    /// The encoding follows from the contents.
    case contents
    /// A string written in place.
    case raw
    /// A number's text that is not stored as an integer.
    case notInteger
    /// A collection that once outgrew its compact encoding.
    case large
}

/// The limits Redis 7.0 is built with (redis-server started without a configuration file;
/// the example redis.conf sets hash-max-listpack-entries to 128).
enum CompactLimits {
    static let intsetEntries = 512
    static let hashEntries = 512
    static let sortedSetEntries = 128
    static let elementBytes = 64
    static let embeddedStringBytes = 44
}

extension Commands {
    /// How `noteLargeEncoding` looks at a command's collection: from the members it names
    /// after the key at `key` (the commands that add some), or from the whole value under
    /// argument 1 (those that store a new one).
    enum EncodingCheck { case arguments(key: Int), contents }

    /// `table`'s commands that may make argument 1's collection outgrow a compact encoding.
    static let encodingChecks: [EncodingCheck?] = {
        let stores = isNamed(["sinterstore", "sunionstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore", "zrangestore"])
        let moves = isNamed(["smove"])
        return table.indices.map { index in
            // Lists have one encoding in Redis 7.0 (quicklist): nothing to note.
            if case .members(.list) = table[index].growth { return nil }
            if case .members = table[index].growth { return .arguments(key: 1) }
            return stores[index] ? .contents : moves[index] ? .arguments(key: 2) : nil
        }
    }()

    /// After `command` changed a collection: marks it `large` when it outgrew its compact
    /// encoding, so it stays so when it shrinks. `.arguments` looks at the size and at the
    /// command's own arguments that are now in the collection (O(arguments), not
    /// O(collection)); a hash converts on a long argument even when it is not stored, as
    /// Redis's does.
    static func noteLargeEncoding(_ command: Command, _ check: EncodingCheck) {
        var keyIndex = 1
        if case .arguments(let index) = check { keyIndex = index }
        let key = command.bytes(keyIndex), members = (keyIndex + 1)..<command.count
        guard let entry = Keyspace.entries[key], entry.hint == .contents else { return }
        let large: Bool
        switch (check, entry.value) {
        case (.contents, let value): large = !isCompact(value)
        case (.arguments, .set(let set)):
            large = set.count > CompactLimits.intsetEntries
                || members.contains { !isIntegerMember(command[$0]) && set.contains(command.bytes($0)) }
        case (.arguments, .hash(let hash)):
            large = hash.count > CompactLimits.hashEntries || members.contains { command[$0].count > CompactLimits.elementBytes }
        case (.arguments, .sortedSet(let sorted)):
            large = sorted.count > CompactLimits.sortedSetEntries
                || members.contains { command[$0].count > CompactLimits.elementBytes && sorted.score(of: command.bytes($0)) != nil }
        default: return
        }
        if large { Keyspace.entries[key]?.hint = .large }
    }

    /// The name OBJECT ENCODING gives `entry`'s value in Redis 7.0.
    static func encoding(of entry: Entry) -> StaticString {
        switch entry.value {
        case .string(let text):
            if entry.hint == .raw { return "raw" }
            if entry.hint == .contents, text.count <= 20, let integer = Numbers.integer(text), Numbers.text(integer) == text { return "int" }
            return text.count <= CompactLimits.embeddedStringBytes ? "embstr" : "raw"
        case .list: return "quicklist"
        case .set: return entry.hint != .large && isCompact(entry.value) ? "intset" : "hashtable"
        case .hash: return entry.hint != .large && isCompact(entry.value) ? "listpack" : "hashtable"
        case .sortedSet: return entry.hint != .large && isCompact(entry.value) ? "listpack" : "skiplist"
        }
    }

    /// Whether a collection's contents fit its compact encoding (an intset, a listpack).
    private static func isCompact(_ value: Value) -> Bool {
        switch value {
        case .set(let set): return set.count <= CompactLimits.intsetEntries && set.allSatisfy { isIntegerMember($0) }
        case .hash(let hash):
            return hash.count <= CompactLimits.hashEntries
                && hash.allSatisfy { $0.key.count <= CompactLimits.elementBytes && $0.value.count <= CompactLimits.elementBytes }
        case .sortedSet(let sorted):
            guard sorted.count <= CompactLimits.sortedSetEntries else { return false }
            var fits = true
            sorted.visit(from: 0, limit: sorted.count, reversed: false) { fits = fits && $0.member.count <= CompactLimits.elementBytes }
            return fits
        default: return true
        }
    }

    /// A member an intset holds: an integer as Redis's string2ll reads it.
    private static func isIntegerMember(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool { Numbers.integer(bytes) != nil }

    private static func isIntegerMember(_ bytes: [UInt8]) -> Bool { Numbers.integer(bytes) != nil }
}
