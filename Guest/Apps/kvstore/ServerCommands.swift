import FlexOS

/// The commands about the server rather than the data: INFO, CONFIG GET, CLIENT.
enum Server {
    /// When the store started serving (Clock.milliseconds), for uptime.
    nonisolated(unsafe) static var startedAt: UInt64 = 0

    /// INFO [section ...]: the sections asked for (default: all this store has), in Redis's
    /// order; an unknown section adds nothing, as in Redis. Only fields the store can fill
    /// honestly are there (no clients or CPU counters: the protocol library holds those).
    static func info(_ c: Command, _ r: inout Reply) {
        let sections: [(StaticString, () -> [UInt8])] = [
            ("server", serverSection), ("memory", memorySection), ("persistence", persistenceSection),
            ("replication", replicationSection), ("keyspace", keyspaceSection),
        ]
        let everything = c.count == 1 || (1..<c.count).contains {
            c.isArgument($0, "default") || c.isArgument($0, "all") || c.isArgument($0, "everything")
        }
        var text: [UInt8] = []
        for (name, section) in sections where everything || (1..<c.count).contains(where: { c.isArgument($0, name) }) {
            if !text.isEmpty { text += bytes("\r\n") }
            text += section()
        }
        r.verbatim(text)
    }

    private static func serverSection() -> [UInt8] {
        var text = bytes("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nos:FlexOS\r\narch_bits:64\r\n")
        text += bytes("flexos_application:kvstore\r\nflexos_compartments:") + Numbers.text(Compartment.count)
        text += bytes("\r\nuptime_in_seconds:") + Numbers.text(Int((Clock.milliseconds &- startedAt) / 1000)) + bytes("\r\n")
        return text
    }

    private static func persistenceSection() -> [UInt8] {
        bytes("# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n")
    }

    private static func memorySection() -> [UInt8] {
        var text = bytes("# Memory\r\nused_memory:") + Numbers.text(Int(PrivateHeap.bytesInUse))
        text += bytes("\r\nmem_largest_free_block:") + Numbers.text(Int(PrivateHeap.largestFreeBlock))
        text += bytes("\r\nmaxmemory:") + Numbers.text(Int(Keyspace.maximumMemory))
        text += bytes("\r\nshared_heap_used:") + Numbers.text(Int(SharedMemory.heapBytesInUse)) + bytes("\r\n")
        return text
    }

    private static func replicationSection() -> [UInt8] {
        bytes("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n")
    }

    private static func keyspaceSection() -> [UInt8] {
        var text = bytes("# Keyspace\r\n")
        if !Keyspace.entries.isEmpty {
            text += bytes("db0:keys=") + Numbers.text(Keyspace.entries.count) + bytes(",expires=")
                + Numbers.text(Keyspace.entries.expiring) + bytes(",avg_ttl=0\r\n")
        }
        return text
    }

    /// CONFIG GET parameter...: the settings the store has (no persistence, one database, no
    /// eviction), as Redis 7.0 answers them: several names or glob patterns, matched without
    /// regard to case, each setting once, an exact name echoed as it was asked. CONFIG SET and
    /// the rest are refused.
    static func config(_ c: Command, _ r: inout Reply) {
        guard c.isArgument(1, "get") else { return r.error("ERR only CONFIG GET <parameter> is supported") }
        guard c.count >= 3 else { return r.error("ERR wrong number of arguments for 'config|get' command") }
        let known: [([UInt8], [UInt8])] = [
            (bytes("save"), []), (bytes("appendonly"), bytes("no")), (bytes("databases"), bytes("1")),
            (bytes("maxmemory"), Numbers.text(Int(Keyspace.maximumMemory))), (bytes("maxmemory-policy"), bytes("noeviction")),
            (bytes("proto-max-bulk-len"), Numbers.text(16 << 20)),
            (bytes("timeout"), Numbers.text(Compartment.clientIdleTimeoutSeconds)), (bytes("maxclients"), Numbers.text(10_000)),
        ]
        var found: [(asked: [UInt8], setting: Int)] = []
        func add(_ asked: [UInt8], _ setting: Int) {
            if !found.contains(where: { $0.setting == setting }) { found.append((asked, setting)) }
        }
        for index in 2..<c.count {
            let asked = c.bytes(index)
            let pattern = asked.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }
            let isGlob = asked.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }
            for (setting, (name, _)) in known.enumerated() where isGlob ? Glob.matches(pattern[...], name[...]) : pattern == name {
                add(isGlob ? name : asked, setting)
            }
        }
        r.map(found.count)
        for (name, setting) in found {
            r.bulk(name)
            r.bulk(known[setting].1)
        }
    }

    /// CLIENT, HELLO and AUTH reach the store only queued in MULTI (Redis queues them too):
    /// resp answers them everywhere else, since it alone knows the connection (its
    /// ConnectionCommands.swift). At EXEC they are refused.
    static func client(_ c: Command, _ r: inout Reply) {
        r.error("ERR CLIENT, HELLO and AUTH are answered by the protocol library, which knows the connection: not inside MULTI")
    }
}
