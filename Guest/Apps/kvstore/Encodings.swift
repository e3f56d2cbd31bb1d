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
    /// The commands that store a new collection under argument 1 (SINTERSTORE and its kin):
    /// `noteStoredEncoding` looks at the whole result after them.
    static let storesCollection = isNamed([
        "sinterstore", "sunionstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore", "zrangestore",
    ])

    /// After a command stored a new collection under argument 1: marks it `large` when it is
    /// not compact, so that it stays so when it shrinks.
    static func noteStoredEncoding(_ command: Command) {
        let key = command.bytes(1)
        guard let entry = Keyspace.entries[key], entry.hint == .contents, !isCompact(entry.value) else { return }
        Keyspace.entries[key]?.hint = .large
    }

    /// Whether a set of `count` members, some of them `members` of `command`, is past an
    /// intset: too many, or a member that is not an integer. The commands that add members
    /// ask this inside their change (when the key is not `large` already) and mark the key.
    static func outgrowsIntset(count: Int, _ command: Command, members: some Sequence<Int>) -> Bool {
        count > CompactLimits.intsetEntries || members.contains { Numbers.integer(command[$0]) == nil }
    }

    /// The same for a listpack of `limit` entries: too many, or an element of `command` at
    /// `elements` longer than 64 bytes.
    static func outgrowsListpack(count: Int, limit: Int, _ command: Command, elements: some Sequence<Int>) -> Bool {
        count > limit || elements.contains { command[$0].count > CompactLimits.elementBytes }
    }

    /// Marks `key`'s collection `large`: once in its life, from the commands above.
    static func markLarge(_ key: [UInt8]) { Keyspace.entries[key]?.hint = .large }

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
    private static func isIntegerMember(_ bytes: [UInt8]) -> Bool { Numbers.integer(bytes) != nil }
}
