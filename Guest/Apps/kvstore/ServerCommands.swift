import FlexOS

/// The commands about the server rather than the data: INFO, CONFIG GET, CLIENT.
enum Server {
    static func info(_ c: Command, _ r: inout Reply) {
        var text = bytes("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nflexos_application:kvstore\r\n")
        text += bytes("flexos_compartments:") + Numbers.text(Compartment.count) + bytes("\r\n")
        text += bytes("\r\n# Memory\r\nused_memory:") + Numbers.text(Int(PrivateHeap.bytesInUse))
        text += bytes("\r\nmem_largest_free_block:") + Numbers.text(Int(PrivateHeap.largestFreeBlock))
        text += bytes("\r\nmaxmemory:") + Numbers.text(Int(Keyspace.maximumMemory))
        text += bytes("\r\nshared_heap_used:") + Numbers.text(Int(SharedMemory.heapBytesInUse))
        text += bytes("\r\n\r\n# Keyspace\r\n")
        if !Keyspace.entries.isEmpty {
            text += bytes("db0:keys=") + Numbers.text(Keyspace.entries.count) + bytes(",expires=") + Numbers.text(Keyspace.entries.expiring) + bytes(",avg_ttl=0\r\n")
        }
        r.bulk(text)
    }

    /// CONFIG GET answers what redis-benchmark and redis-cli ask (no persistence, one
    /// database); CONFIG SET and the rest are refused.
    static func config(_ c: Command, _ r: inout Reply) {
        guard c.isArgument(1, "get"), c.count == 3 else {
            return r.error("ERR only CONFIG GET <parameter> is supported")
        }
        let known: [(StaticString, [UInt8])] = [
            ("save", []), ("appendonly", bytes("no")), ("databases", bytes("1")),
            ("maxmemory", Numbers.text(Int(Keyspace.maximumMemory))), ("proto-max-bulk-len", Numbers.text(16 << 20)),
            ("timeout", Numbers.text(Compartment.clientIdleTimeoutSeconds)), ("maxclients", Numbers.text(10_000)),
        ]
        guard let (name, value) = known.first(where: { c.isArgument(2, $0.0) }) else { return r.array(0) }
        r.array(2)
        r.bulk(name)
        r.bulk(value)
    }

    static func client(_ c: Command, _ r: inout Reply) {
        if c.isArgument(1, "setname") || c.isArgument(1, "setinfo") || c.isArgument(1, "reply") { return r.ok() }
        if c.isArgument(1, "getname") { return r.null() }
        if c.isArgument(1, "id") { return r.integer(1) }
        r.error("ERR unknown CLIENT subcommand")
    }
}
