import FlexOS

/// The commands, Redis's semantics, one function each. `run` checks the name and arity,
/// then dispatches; data-growing commands are refused with -OOM when the heap is nearly full.
enum Commands {
    static let wrongType: StaticString = "WRONGTYPE Operation against a key holding the wrong kind of value"
    static let notInteger: StaticString = "ERR value is not an integer or out of range"
    static let outOfMemory: StaticString = "OOM command not allowed when used memory > 'maxmemory'."

    typealias Handler = (Command, inout Reply) -> Void
    /// A command: its name, its minimum argument count (the name included), whether it
    /// takes more, how it grows the data (and may be refused with -OOM), and its code.
    struct Definition {
        let name: StaticString
        let minimum: Int
        let variadic: Bool
        let growth: Growth
        let run: Handler
    }

    /// What a command adds to the data, charged before it runs (MemoryCost.swift).
    enum Growth {
        case none
        /// A value under a key: arguments 1 and 2 (SET, APPEND to a new key).
        case keyValue
        /// A value in place of another in a collection: argument 3 (LSET).
        case replacement
        /// A value under a key with an expiry: arguments 1 and 3 (SETEX, PSETEX).
        case expiringKeyValue
        /// Values under keys: the pairs of arguments from 1 on (MSET).
        case keyValuePairs
        /// A number under argument 1's key (INCR and its kind).
        case counter
        /// Members of the collection under argument 1, from argument 2 on.
        case members(MemoryCost.Collection)

        /// The data `command` may store, and what its tables may need for a moment more.
        func cost(of c: Command) -> (data: Int, growth: MemoryCost.Pieces) {
            let newKey = { (index: Int) in MemoryCost.Pieces(Keyspace.entries.growth(adding: c.bytes(index))) }
            switch self {
            case .none: return (0, MemoryCost.Pieces())
            case .keyValue:
                return (MemoryCost.key(c[1].count) + MemoryCost.bytes(c[2].count), newKey(1))
            case .replacement:
                return (MemoryCost.bytes(c[3].count), MemoryCost.Pieces())
            case .expiringKeyValue:
                return (MemoryCost.key(c[1].count) + MemoryCost.bytes(c[3].count), newKey(1))
            case .keyValuePairs:
                var data = 0, largest = 0
                for index in stride(from: 1, to: c.count - 1, by: 2) {
                    data &+= MemoryCost.key(c[index].count) &+ MemoryCost.bytes(c[index + 1].count)
                    // Shards grow one after another, each after letting go of its old table.
                    largest = max(largest, Keyspace.entries.growth(adding: c.bytes(index)))
                }
                return (data, MemoryCost.Pieces(largest))
            case .counter:
                return (MemoryCost.key(c[1].count) + MemoryCost.bytes(20), newKey(1))
            case .members(let kind):
                let step = kind.argumentsPerMember
                var data = MemoryCost.key(c[1].count)
                for index in stride(from: 2, to: c.count - step + 1, by: step) {
                    data &+= MemoryCost.member(of: kind, first: c[index].count, second: step == 2 ? c[index + 1].count : 0)
                }
                let members = (c.count - 2) / step
                let key = c.bytes(1)
                // A new key grows its shard's table, then the new collection's own storage.
                guard let growth = Keyspace.peek(key, { $0.growth(adding: members) }) else {
                    var growth = Value.empty(kind).growth(adding: members)
                    growth.add(Keyspace.entries.growth(adding: key))
                    return (data, growth)
                }
                return (data, growth)
            }
        }
    }

    static let table: [Definition] = [
        Definition(name: "get", minimum: 2, variadic: false, growth: .none, run: get),
        Definition(name: "set", minimum: 3, variadic: true, growth: .keyValue, run: set),
        Definition(name: "ping", minimum: 1, variadic: true, growth: .none, run: ping),
        Definition(name: "echo", minimum: 2, variadic: false, growth: .none, run: { c, r in r.bulk(c[1]) }),
        Definition(name: "del", minimum: 2, variadic: true, growth: .none, run: delete),
        Definition(name: "exists", minimum: 2, variadic: true, growth: .none, run: exists),
        Definition(name: "incr", minimum: 2, variadic: false, growth: .counter, run: { c, r in increment(c, by: 1, &r) }),
        Definition(name: "decr", minimum: 2, variadic: false, growth: .counter, run: { c, r in increment(c, by: -1, &r) }),
        Definition(name: "incrby", minimum: 3, variadic: false, growth: .counter, run: { c, r in incrementBy(c, negate: false, &r) }),
        Definition(name: "decrby", minimum: 3, variadic: false, growth: .counter, run: { c, r in incrementBy(c, negate: true, &r) }),
        Definition(name: "incrbyfloat", minimum: 3, variadic: false, growth: .counter, run: incrbyfloat),
        Definition(name: "append", minimum: 3, variadic: false, growth: .keyValue, run: append),
        Definition(name: "strlen", minimum: 2, variadic: false, growth: .none, run: strlen),
        Definition(name: "mset", minimum: 3, variadic: true, growth: .keyValuePairs, run: mset),
        Definition(name: "mget", minimum: 2, variadic: true, growth: .none, run: mget),
        Definition(name: "msetnx", minimum: 3, variadic: true, growth: .keyValuePairs, run: msetnx),
        Definition(name: "setnx", minimum: 3, variadic: false, growth: .keyValue, run: setnx),
        Definition(name: "getset", minimum: 3, variadic: false, growth: .keyValue, run: getset),
        Definition(name: "getdel", minimum: 2, variadic: false, growth: .none, run: getdel),
        Definition(name: "substr", minimum: 4, variadic: false, growth: .none, run: getrange),
        Definition(name: "bitop", minimum: 4, variadic: true, growth: .none, run: bitop),
        Definition(name: "getrange", minimum: 4, variadic: false, growth: .none, run: getrange),
        Definition(name: "setrange", minimum: 4, variadic: false, growth: .none, run: setrange),
        Definition(name: "setbit", minimum: 4, variadic: false, growth: .none, run: setbit),
        Definition(name: "bitfield", minimum: 2, variadic: true, growth: .none, run: bitfield(readOnly: false)),
        Definition(name: "pfadd", minimum: 2, variadic: true, growth: .none, run: pfadd),
        Definition(name: "pfcount", minimum: 2, variadic: true, growth: .none, run: pfcount),
        Definition(name: "pfmerge", minimum: 2, variadic: true, growth: .none, run: pfmerge),
        Definition(name: "bitfield_ro", minimum: 2, variadic: true, growth: .none, run: bitfield(readOnly: true)),
        Definition(name: "getbit", minimum: 3, variadic: false, growth: .none, run: getbit),
        Definition(name: "object", minimum: 2, variadic: true, growth: .none, run: object),
        Definition(name: "sort", minimum: 2, variadic: true, growth: .none, run: sort(readOnly: false)),
        Definition(name: "sort_ro", minimum: 2, variadic: true, growth: .none, run: sort(readOnly: true)),
        Definition(name: "lcs", minimum: 3, variadic: true, growth: .none, run: lcs),
        Definition(name: "bitpos", minimum: 3, variadic: true, growth: .none, run: bitpos),
        Definition(name: "bitcount", minimum: 2, variadic: true, growth: .none, run: bitcount),
        Definition(name: "setex", minimum: 4, variadic: false, growth: .expiringKeyValue, run: { c, r in setWithExpiry(c, unit: 1000, &r) }),
        Definition(name: "psetex", minimum: 4, variadic: false, growth: .expiringKeyValue, run: { c, r in setWithExpiry(c, unit: 1, &r) }),
        Definition(name: "expire", minimum: 3, variadic: true, growth: .none, run: { c, r in expire(c, unit: 1000, absolute: false, &r) }),
        Definition(name: "pexpire", minimum: 3, variadic: true, growth: .none, run: { c, r in expire(c, unit: 1, absolute: false, &r) }),
        Definition(name: "expireat", minimum: 3, variadic: true, growth: .none, run: { c, r in expire(c, unit: 1000, absolute: true, &r) }),
        Definition(name: "pexpireat", minimum: 3, variadic: true, growth: .none, run: { c, r in expire(c, unit: 1, absolute: true, &r) }),
        Definition(name: "expiretime", minimum: 2, variadic: false, growth: .none, run: { c, r in expiretime(c, unit: 1000, &r) }),
        Definition(name: "pexpiretime", minimum: 2, variadic: false, growth: .none, run: { c, r in expiretime(c, unit: 1, &r) }),
        Definition(name: "getex", minimum: 2, variadic: true, growth: .none, run: getex),
        Definition(name: "time", minimum: 1, variadic: false, growth: .none, run: time),
        Definition(name: "ttl", minimum: 2, variadic: false, growth: .none, run: { c, r in ttl(c, unit: 1000, &r) }),
        Definition(name: "pttl", minimum: 2, variadic: false, growth: .none, run: { c, r in ttl(c, unit: 1, &r) }),
        Definition(name: "persist", minimum: 2, variadic: false, growth: .none, run: persist),
        Definition(name: "type", minimum: 2, variadic: false, growth: .none, run: type),
        Definition(name: "copy", minimum: 3, variadic: true, growth: .none, run: copy),
        Definition(name: "randomkey", minimum: 1, variadic: false, growth: .none, run: randomkey),
        Definition(name: "rename", minimum: 3, variadic: false, growth: .keyValue, run: { c, r in rename(c, onlyIfFree: false, &r) }),
        Definition(name: "renamenx", minimum: 3, variadic: false, growth: .keyValue, run: { c, r in rename(c, onlyIfFree: true, &r) }),
        Definition(name: "unlink", minimum: 2, variadic: true, growth: .none, run: delete),
        Definition(name: "touch", minimum: 2, variadic: true, growth: .none, run: touch),
        Definition(name: "keys", minimum: 2, variadic: false, growth: .none, run: keys),
        Definition(name: "scan", minimum: 2, variadic: true, growth: .none, run: ScanCommands.scan),
        Definition(name: "sscan", minimum: 3, variadic: true, growth: .none, run: ScanCommands.sscan),
        Definition(name: "hscan", minimum: 3, variadic: true, growth: .none, run: ScanCommands.hscan),
        Definition(name: "zscan", minimum: 3, variadic: true, growth: .none, run: ScanCommands.zscan),
        Definition(name: "lpush", minimum: 3, variadic: true, growth: .members(.list), run: { c, r in push(c, front: true, &r) }),
        Definition(name: "rpush", minimum: 3, variadic: true, growth: .members(.list), run: { c, r in push(c, front: false, &r) }),
        Definition(name: "lpop", minimum: 2, variadic: true, growth: .none, run: { c, r in pop(c, front: true, &r) }),
        Definition(name: "rpop", minimum: 2, variadic: true, growth: .none, run: { c, r in pop(c, front: false, &r) }),
        Definition(name: "lrange", minimum: 4, variadic: false, growth: .none, run: lrange),
        Definition(name: "llen", minimum: 2, variadic: false, growth: .none, run: llen),
        Definition(name: "lindex", minimum: 3, variadic: false, growth: .none, run: lindex),
        Definition(name: "lset", minimum: 4, variadic: false, growth: .replacement, run: lset),
        Definition(name: "ltrim", minimum: 4, variadic: false, growth: .none, run: ltrim),
        Definition(name: "lrem", minimum: 4, variadic: false, growth: .none, run: lrem),
        Definition(name: "lpushx", minimum: 3, variadic: true, growth: .members(.list), run: { c, r in pushIfExists(c, front: true, &r) }),
        Definition(name: "rpushx", minimum: 3, variadic: true, growth: .members(.list), run: { c, r in pushIfExists(c, front: false, &r) }),
        Definition(name: "linsert", minimum: 5, variadic: false, growth: .members(.list), run: linsert),
        Definition(name: "lpos", minimum: 3, variadic: true, growth: .none, run: lpos),
        Definition(name: "lmove", minimum: 5, variadic: false, growth: .keyValue, run: { c, r in
            guard let directions = lmoveDirections(c) else { return r.error("ERR syntax error") }
            lmove(c, fromFront: directions.fromFront, toFront: directions.toFront, &r) }),
        Definition(name: "rpoplpush", minimum: 3, variadic: false, growth: .keyValue, run: { c, r in lmove(c, fromFront: false, toFront: true, &r) }),
        Definition(name: "sadd", minimum: 3, variadic: true, growth: .members(.set), run: sadd),
        Definition(name: "spop", minimum: 2, variadic: true, growth: .none, run: spop),
        Definition(name: "srandmember", minimum: 2, variadic: true, growth: .none, run: srandmember),
        Definition(name: "hrandfield", minimum: 2, variadic: true, growth: .none, run: hrandfield),
        Definition(name: "zrandmember", minimum: 2, variadic: true, growth: .none, run: zrandmember),
        Definition(name: "scard", minimum: 2, variadic: false, growth: .none, run: scard),
        Definition(name: "sismember", minimum: 3, variadic: false, growth: .none, run: sismember),
        Definition(name: "smembers", minimum: 2, variadic: false, growth: .none, run: smembers),
        Definition(name: "srem", minimum: 3, variadic: true, growth: .none, run: srem),
        Definition(name: "smismember", minimum: 3, variadic: true, growth: .none, run: smismember),
        Definition(name: "sinter", minimum: 2, variadic: true, growth: .none, run: { c, r in setAlgebra(c, .intersection, &r) }),
        Definition(name: "sunion", minimum: 2, variadic: true, growth: .none, run: { c, r in setAlgebra(c, .union, &r) }),
        Definition(name: "sdiff", minimum: 2, variadic: true, growth: .none, run: { c, r in setAlgebra(c, .difference, &r) }),
        Definition(name: "sinterstore", minimum: 3, variadic: true, growth: .none, run: { c, r in storeSetAlgebra(c, .intersection, &r) }),
        Definition(name: "sunionstore", minimum: 3, variadic: true, growth: .none, run: { c, r in storeSetAlgebra(c, .union, &r) }),
        Definition(name: "sdiffstore", minimum: 3, variadic: true, growth: .none, run: { c, r in storeSetAlgebra(c, .difference, &r) }),
        Definition(name: "sintercard", minimum: 3, variadic: true, growth: .none, run: sintercard),
        Definition(name: "smove", minimum: 4, variadic: false, growth: .none, run: smove),
        Definition(name: "hset", minimum: 4, variadic: true, growth: .members(.hash), run: hset),
        Definition(name: "hget", minimum: 3, variadic: false, growth: .none, run: hget),
        Definition(name: "hmset", minimum: 4, variadic: true, growth: .members(.hash), run: hmset),
        Definition(name: "hsetnx", minimum: 4, variadic: false, growth: .members(.hash), run: hsetnx),
        Definition(name: "hmget", minimum: 3, variadic: true, growth: .none, run: hmget),
        Definition(name: "hdel", minimum: 3, variadic: true, growth: .none, run: hdel),
        Definition(name: "hincrby", minimum: 4, variadic: false, growth: .members(.hash), run: hincrby),
        Definition(name: "hincrbyfloat", minimum: 4, variadic: false, growth: .members(.hash), run: hincrbyfloat),
        Definition(name: "hlen", minimum: 2, variadic: false, growth: .none, run: { c, r in hashRead(c, &r, absent: { $0.integer(0) }) { hash, r in r.integer(hash.count) } }),
        Definition(name: "hexists", minimum: 3, variadic: false, growth: .none, run: { c, r in
            hashRead(c, &r, absent: { $0.integer(0) }) { hash, r in r.integer(hash[c.bytes(2)] == nil ? 0 : 1) } }),
        Definition(name: "hstrlen", minimum: 3, variadic: false, growth: .none, run: { c, r in
            hashRead(c, &r, absent: { $0.integer(0) }) { hash, r in r.integer(hash[c.bytes(2)]?.count ?? 0) } }),
        Definition(name: "hgetall", minimum: 2, variadic: false, growth: .none, run: { c, r in hashContents(c, fields: true, values: true, &r) }),
        Definition(name: "hkeys", minimum: 2, variadic: false, growth: .none, run: { c, r in hashContents(c, fields: true, values: false, &r) }),
        Definition(name: "hvals", minimum: 2, variadic: false, growth: .none, run: { c, r in hashContents(c, fields: false, values: true, &r) }),
        Definition(name: "zadd", minimum: 4, variadic: true, growth: .members(.sortedSet), run: zadd),
        Definition(name: "zpopmin", minimum: 2, variadic: true, growth: .none, run: zpopmin),
        Definition(name: "zincrby", minimum: 4, variadic: false, growth: .members(.sortedSet), run: zincrby),
        Definition(name: "zscore", minimum: 3, variadic: false, growth: .none, run: { c, r in zscore(c, many: false, &r) }),
        Definition(name: "zmscore", minimum: 3, variadic: true, growth: .none, run: { c, r in zscore(c, many: true, &r) }),
        Definition(name: "zrem", minimum: 3, variadic: true, growth: .none, run: zrem),
        Definition(name: "zcard", minimum: 2, variadic: false, growth: .none, run: zcard),
        Definition(name: "zpopmax", minimum: 2, variadic: true, growth: .none, run: zpopmax),
        Definition(name: "zrange", minimum: 4, variadic: true, growth: .none, run: zrange),
        Definition(name: "zrangestore", minimum: 5, variadic: true, growth: .none, run: zrangestore),
        Definition(name: "zrevrange", minimum: 4, variadic: true, growth: .none, run: zrange(.rank, reversed: true)),
        Definition(name: "zrangebyscore", minimum: 4, variadic: true, growth: .none, run: zrange(.score, reversed: false)),
        Definition(name: "zrevrangebyscore", minimum: 4, variadic: true, growth: .none, run: zrange(.score, reversed: true)),
        Definition(name: "zrangebylex", minimum: 4, variadic: true, growth: .none, run: zrange(.lex, reversed: false)),
        Definition(name: "zrevrangebylex", minimum: 4, variadic: true, growth: .none, run: zrange(.lex, reversed: true)),
        Definition(name: "zrank", minimum: 3, variadic: false, growth: .none, run: zrank(reversed: false)),
        Definition(name: "zrevrank", minimum: 3, variadic: false, growth: .none, run: zrank(reversed: true)),
        Definition(name: "zcount", minimum: 4, variadic: false, growth: .none, run: zcount(.score)),
        Definition(name: "zlexcount", minimum: 4, variadic: false, growth: .none, run: zcount(.lex)),
        Definition(name: "zremrangebyrank", minimum: 4, variadic: false, growth: .none, run: zremrange(.rank)),
        Definition(name: "zremrangebyscore", minimum: 4, variadic: false, growth: .none, run: zremrange(.score)),
        Definition(name: "zremrangebylex", minimum: 4, variadic: false, growth: .none, run: zremrange(.lex)),
        Definition(name: "zunion", minimum: 3, variadic: true, growth: .none, run: zsetAlgebra(.union)),
        Definition(name: "zinter", minimum: 3, variadic: true, growth: .none, run: zsetAlgebra(.intersection)),
        Definition(name: "zdiff", minimum: 3, variadic: true, growth: .none, run: zsetAlgebra(.difference)),
        Definition(name: "zunionstore", minimum: 4, variadic: true, growth: .none, run: zsetAlgebraStore(.union)),
        Definition(name: "zinterstore", minimum: 4, variadic: true, growth: .none, run: zsetAlgebraStore(.intersection)),
        Definition(name: "zdiffstore", minimum: 4, variadic: true, growth: .none, run: zsetAlgebraStore(.difference)),
        Definition(name: "zintercard", minimum: 3, variadic: true, growth: .none, run: zintercard),
        Definition(name: "zmpop", minimum: 4, variadic: true, growth: .none, run: { c, r in zmpop(c, &r) }),
        Definition(name: "lmpop", minimum: 4, variadic: true, growth: .none, run: { c, r in lmpop(c, &r) }),
        Definition(name: "dbsize", minimum: 1, variadic: false, growth: .none, run: { _, r in r.integer(Keyspace.entries.count) }),
        Definition(name: "flushall", minimum: 1, variadic: true, growth: .none, run: flush),
        Definition(name: "flushdb", minimum: 1, variadic: true, growth: .none, run: flush),
        Definition(name: "move", minimum: 3, variadic: false, growth: .none, run: move),
        Definition(name: "swapdb", minimum: 3, variadic: false, growth: .none, run: swapdb),
        Definition(name: "role", minimum: 1, variadic: false, growth: .none, run: { _, r in
            r.array(3)
            r.bulk("master")
            r.integer(0)
            r.array(0) }),
        Definition(name: "select", minimum: 2, variadic: false, growth: .none, run: select),
        Definition(name: "info", minimum: 1, variadic: true, growth: .none, run: Server.info),
        Definition(name: "config", minimum: 2, variadic: true, growth: .none, run: Server.config),
        Definition(name: "client", minimum: 2, variadic: true, growth: .none, run: Server.client),
        Definition(name: "hello", minimum: 1, variadic: true, growth: .none, run: Server.client),
        Definition(name: "auth", minimum: 2, variadic: true, growth: .none, run: Server.client),
        Definition(name: "command", minimum: 1, variadic: true, growth: .none, run: { _, r in r.array(0) }),
        Definition(name: "blpop", minimum: 3, variadic: true, growth: .none, run: { c, r in blockingPop(c, front: true, &r) }),
        Definition(name: "brpop", minimum: 3, variadic: true, growth: .none, run: { c, r in blockingPop(c, front: false, &r) }),
        Definition(name: "blmove", minimum: 6, variadic: false, growth: .keyValue, run: blockingMove),
        Definition(name: "brpoplpush", minimum: 4, variadic: false, growth: .keyValue, run: blockingMove),
        Definition(name: "blmpop", minimum: 5, variadic: true, growth: .none, run: { c, r in blockingMultiPop(c, sorted: false, &r) }),
        Definition(name: "bzpopmin", minimum: 3, variadic: true, growth: .none, run: { c, r in blockingSortedPop(c, lowest: true, &r) }),
        Definition(name: "bzpopmax", minimum: 3, variadic: true, growth: .none, run: { c, r in blockingSortedPop(c, lowest: false, &r) }),
        Definition(name: "bzmpop", minimum: 5, variadic: true, growth: .none, run: { c, r in blockingMultiPop(c, sorted: true, &r) }),
        // Queued in MULTI (outside it resp answers it): EXEC has already forgotten the watched keys.
        Definition(name: "unwatch", minimum: 1, variadic: false, growth: .none, run: { _, r in r.ok() }),
    ]

    static func run(_ command: Command, _ reply: inout Reply) {
        guard let index = check(command, &reply) else { return }
        let definition = table[index]
        Transactions.writing = !readOnly[index]
        defer { Transactions.commit(changedKeys: !reply.isError) }
        if case .none = definition.growth {} else {
            let cost = definition.growth.cost(of: command)
            guard Keyspace.hasRoom(for: cost.data, growth: cost.growth) else { return reply.error(outOfMemory) }
        }
        definition.run(command, &reply)
        if storesCollection[index] && !reply.isError { noteStoredEncoding(command) }
    }

    /// The index in `table` of `command`'s definition when its name and arity are right;
    /// else nil, with the error replied.
    static func check(_ command: Command, _ reply: inout Reply) -> Int? {
        guard let index = runnableIndex(command) else {
            if table.contains(where: { command.isArgument(0, $0.name) }) {
                reply.error(bytes("ERR wrong number of arguments for '") + lowercased(command[0]) + bytes("' command"))
            } else {
                unknown(command, &reply)
            }
            return nil
        }
        return index
    }

    /// Whether `command` would pass `check` (EXEC asks again of each queued command).
    static func isRunnable(_ command: Command) -> Bool { runnableIndex(command) != nil }

    /// The index of `command`'s definition when its name is known and its arity right.
    private static func runnableIndex(_ command: Command) -> Int? {
        guard let index = table.firstIndex(where: { command.isArgument(0, $0.name) }) else { return nil }
        let definition = table[index]
        guard command.count >= definition.minimum, definition.variadic || command.count == definition.minimum else {
            return nil
        }
        return index
    }

    /// The commands that never change a key (Redis's read-only ones, and those answered
    /// without the keyspace): a change they make (dropping an expired key) touches no WATCH.
    static let readOnlyNames: [StaticString] = [
        "get", "ping", "echo", "exists", "bitpos", "bitfield_ro", "lcs", "sort_ro", "object", "substr", "role", "expiretime", "pexpiretime", "time", "srandmember", "hrandfield", "zrandmember", "strlen", "mget", "getrange", "getbit", "bitcount", "ttl", "pttl", "type",
        "randomkey", "touch", "keys", "lrange", "llen", "lindex", "lpos", "scard", "sismember", "smembers",
        "smismember", "sinter", "sunion", "sdiff", "sintercard", "hget", "hmget", "hlen", "hexists", "hstrlen",
        "hgetall", "hkeys", "hvals", "zscore", "zmscore", "zcard", "zrange", "zrevrange", "zrangebyscore",
        "zrevrangebyscore", "zrangebylex", "zrevrangebylex", "zrank", "zrevrank", "zcount", "zlexcount", "zunion",
        "zinter", "zdiff", "zintercard", "scan", "sscan", "hscan", "zscan", "dbsize", "select", "info", "config", "client", "hello", "auth", "command", "unwatch",
    ]

    /// `readOnlyNames` by index in `table`.
    static let readOnly = isNamed(readOnlyNames)

    /// Whether each command of `table` is one of `names`.
    static func isNamed(_ names: [StaticString]) -> [Bool] {
        table.map { definition in
            names.contains { name in
                name.utf8CodeUnitCount == definition.name.utf8CodeUnitCount
                    && (0..<name.utf8CodeUnitCount).allSatisfy { name.utf8Start[$0] == definition.name.utf8Start[$0] }
            }
        }
    }

    /// The families of Redis commands the appliance leaves out on purpose, each answered with
    /// an error that names it instead of "unknown command".
    static let outOfScope: [(family: StaticString, commands: [StaticString])] = [
        ("persistence", ["save", "bgsave", "bgrewriteaof", "lastsave", "dump", "restore", "restore-asking", "migrate"]),
        ("replication", ["replicaof", "slaveof", "wait", "sync", "psync", "failover", "replconf"]),
        ("cluster", ["cluster", "readonly", "readwrite", "asking"]),
        ("scripting", ["eval", "evalsha", "eval_ro", "evalsha_ro", "script", "function", "fcall", "fcall_ro"]),
        ("modules", ["module"]),
        ("streams", ["xadd", "xrange", "xrevrange", "xlen", "xread", "xreadgroup", "xgroup", "xack", "xpending",
                     "xclaim", "xautoclaim", "xdel", "xtrim", "xinfo", "xsetid"]),
        ("pub/sub", ["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "publish", "pubsub", "ssubscribe",
                     "sunsubscribe", "spublish"]),
        ("monitoring", ["monitor"]),
    ]

    static func unknown(_ command: Command, _ reply: inout Reply) {
        for (family, commands) in outOfScope where commands.contains(where: { command.isArgument(0, $0) }) {
            return reply.error(
                bytes("ERR '") + lowercased(command[0]) + bytes("' is not supported: this appliance leaves out ") + bytes(family))
        }
        var text = bytes("ERR unknown command '") + Array(command[0].prefix(128)) + bytes("', with args beginning with: ")
        for index in 1..<min(command.count, 4) { text += [39] + Array(command[index].prefix(64)) + [39, 32] }
        reply.error(text)
    }

    // MARK: Strings

    static func get(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.null()
        case .string(let value)?: r.bulk(value)
        default: r.error(wrongType)
        }
    }

    /// SET key value [NX | XX] [GET] [EX | PX | EXAT | PXAT time | KEEPTTL], as Redis 7.0 reads it.
    static func set(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        var onlyIfAbsent = false, onlyIfPresent = false, returnOld = false
        var option: ExpiryOption?
        var index = 3
        while index < c.count {
            if c.isArgument(index, "nx") && !onlyIfPresent { onlyIfAbsent = true }
            else if c.isArgument(index, "xx") && !onlyIfAbsent { onlyIfPresent = true }
            else if c.isArgument(index, "get") { returnOld = true }
            else if let (parsed, next) = expiryOption(c, at: index, after: option, set: true) {
                (option, index) = (parsed, next)
                continue
            } else {
                return r.error("ERR syntax error")
            }
            index += 1
        }
        var expiresAt: UInt64 = 0
        if let option, case .time = option {
            guard let when = expiry(of: option, c, &r) else { return }
            expiresAt = when
        }
        var keepTTL = false
        if case .keep? = option { keepTTL = true }
        let old = Keyspace.live(key)
        if returnOld, let old {
            guard case .string = old.value else { return r.error(wrongType) }
        }
        if onlyIfAbsent && old != nil || onlyIfPresent && old == nil { return returnOld ? reply(old, &r) : r.null() }
        Keyspace.entries[key] = Entry(value: .string(c.bytes(2)), expiresAt: keepTTL ? old?.expiresAt ?? 0 : expiresAt)
        returnOld ? reply(old, &r) : r.ok()
    }

    private static func reply(_ old: Entry?, _ r: inout Reply) {
        if case .string(let value)? = old?.value { r.bulk(value) } else { r.null() }
    }

    static func ping(_ c: Command, _ r: inout Reply) {
        switch c.count {
        case 1: r.simple("PONG")
        case 2: r.bulk(c[1])
        default: r.error("ERR wrong number of arguments for 'ping' command")
        }
    }

    static func delete(_ c: Command, _ r: inout Reply) {
        var removed = 0
        for index in 1..<c.count where Keyspace.live(c.bytes(index)) != nil {
            Keyspace.entries[c.bytes(index)] = nil
            removed += 1
        }
        r.integer(removed)
    }

    static func exists(_ c: Command, _ r: inout Reply) {
        var found = 0
        for index in 1..<c.count where Keyspace.exists(c.bytes(index)) { found += 1 }
        r.integer(found)
    }

    static func incrementBy(_ c: Command, negate: Bool, _ r: inout Reply) {
        guard let amount = Numbers.integer(c[2]), !(negate && amount == Int.min) else { return r.error(notInteger) }
        increment(c, by: negate ? -amount : amount, &r)
    }

    static func increment(_ c: Command, by amount: Int, _ r: inout Reply) {
        let key = c.bytes(1)
        let entry = Keyspace.live(key)
        var current = 0
        if let entry {
            guard case .string(let text) = entry.value else { return r.error(wrongType) }
            guard let value = Numbers.integer(text) else { return r.error(notInteger) }
            current = value
        }
        let (sum, overflow) = current.addingReportingOverflow(amount)
        guard !overflow else { return r.error("ERR increment or decrement would overflow") }
        Keyspace.entries[key] = Entry(value: .string(Numbers.text(sum)), expiresAt: entry?.expiresAt ?? 0)
        r.integer(sum)
    }

    static func append(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else {
            Keyspace.entries[key] = Entry(value: .string(c.bytes(2)))
            return r.integer(c[2].count)
        }
        guard let current = Keyspace.peek(key, { value -> Int? in if case .string(let bytes) = value { bytes.count } else { nil } }) else {
            return r.error(wrongType)
        }
        let (length, overflow) = current.addingReportingOverflow(c[2].count)
        let capacity = Keyspace.grownCapacity(from: current, toHold: length)
        // Growing copies the value: the new storage is allocated while the old one lives.
        let (grown, old) = (MemoryCost.bytes(capacity), MemoryCost.bytes(current))
        guard !overflow, Keyspace.hasRoom(for: grown - old, growth: MemoryCost.Pieces(old)) else { return r.error(outOfMemory) }
        Keyspace.entries[key]?.value.withString { value in
            if value.capacity < length { value.reserveCapacity(capacity) }
            value.append(contentsOf: c[2])
        }
        Keyspace.entries[key]?.hint = .raw
        r.integer(length)
    }

    static func strlen(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .string(let value)?: r.integer(value.count)
        default: r.error(wrongType)
        }
    }

    static func mset(_ c: Command, _ r: inout Reply) {
        guard c.count % 2 == 1 else { return r.error("ERR wrong number of arguments for 'mset' command") }
        for index in stride(from: 1, to: c.count, by: 2) { Keyspace.entries[c.bytes(index)] = Entry(value: .string(c.bytes(index + 1))) }
        r.ok()
    }

    /// MSETNX: all the keys, or none when any exists.
    static func msetnx(_ c: Command, _ r: inout Reply) {
        guard c.count % 2 == 1 else { return r.error("ERR wrong number of arguments for 'msetnx' command") }
        for index in stride(from: 1, to: c.count, by: 2) where Keyspace.live(c.bytes(index)) != nil { return r.integer(0) }
        for index in stride(from: 1, to: c.count, by: 2) { Keyspace.entries[c.bytes(index)] = Entry(value: .string(c.bytes(index + 1))) }
        r.integer(1)
    }

    static func setnx(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard Keyspace.live(key) == nil else { return r.integer(0) }
        Keyspace.entries[key] = Entry(value: .string(c.bytes(2)))
        r.integer(1)
    }

    /// GETSET: SET key value GET, the expiry cleared.
    static func getset(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        let old = Keyspace.live(key)
        if let old { guard case .string = old.value else { return r.error(wrongType) } }
        Keyspace.entries[key] = Entry(value: .string(c.bytes(2)))
        reply(old, &r)
    }

    static func getdel(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        switch Keyspace.live(key)?.value {
        case nil: r.null()
        case .string(let value)?:
            Keyspace.entries[key] = nil
            r.bulk(value)
        default: r.error(wrongType)
        }
    }

    /// GETRANGE key start end: inclusive, negative indexes from the end, clamped (Redis's
    /// rules; the old SUBSTR).
    static func getrange(_ c: Command, _ r: inout Reply) {
        guard let start = Numbers.integer(c[2]), let end = Numbers.integer(c[3]) else { return r.error(notInteger) }
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.bulk([])
        case .string(let value)?:
            let count = value.count
            // Both from the end and crossed: empty, even where clamping would uncross them.
            if start < 0 && end < 0 && start > end { return r.bulk([]) }
            let first = max(start < 0 ? count + start : start, 0)
            let last = min(max(end < 0 ? count + end : end, 0), count - 1)
            if count == 0 || first > last { r.bulk([]) } else { r.bulk(Array(value[first...last])) }
        default: r.error(wrongType)
        }
    }

    /// SETEX key seconds value, PSETEX key milliseconds value.
    static func setWithExpiry(_ c: Command, unit: UInt64, _ r: inout Reply) {
        guard let amount = Numbers.integer(c[2]) else { return r.error(notInteger) }
        guard amount > 0, amount <= Int.max / 1000 else {
            return r.error(invalidExpireTime(c))
        }
        Keyspace.entries[c.bytes(1)] = Entry(value: .string(c.bytes(3)), expiresAt: Clock.milliseconds + UInt64(amount) * unit)
        r.ok()
    }

    static func mget(_ c: Command, _ r: inout Reply) {
        r.array(c.count - 1)
        for index in 1..<c.count {
            if case .string(let value)? = Keyspace.live(c.bytes(index))?.value { r.bulk(value) } else { r.null() }
        }
    }

    // MARK: Expiry

    /// EXPIRE, PEXPIRE (a time from now), EXPIREAT and PEXPIREAT (a unix time) key time
    /// [NX|XX|GT|LT]: 1 when the expiry was set (or the key removed, for a time already
    /// past), 0 without the key or when the condition fails.
    static func expire(_ c: Command, unit: UInt64, absolute: Bool, _ r: inout Reply) {
        var onlyWithout = false, onlyWith = false, onlyLater = false, onlySooner = false
        for index in 3..<c.count {
            if c.isArgument(index, "nx") { onlyWithout = true } else if c.isArgument(index, "xx") { onlyWith = true }
            else if c.isArgument(index, "gt") { onlyLater = true } else if c.isArgument(index, "lt") { onlySooner = true }
            else { return r.error(bytes("ERR Unsupported option ") + c.bytes(index)) }
        }
        if onlyWithout && (onlyWith || onlyLater || onlySooner) {
            return r.error("ERR NX and XX, GT or LT options at the same time are not compatible")
        }
        if onlyLater && onlySooner { return r.error("ERR GT and LT options at the same time are not compatible") }
        guard let amount = Numbers.integer(c[2]) else { return r.error(notInteger) }
        let (delta, overflow) = amount.multipliedReportingOverflow(by: Int(unit))
        let (relative, late) = Int(Clock.milliseconds).addingReportingOverflow(delta)
        let when = absolute && !overflow ? WallClock.expiry(ofUnix: delta) : relative
        guard !overflow, absolute || !late else {
            return r.error(invalidExpireTime(c))
        }
        let key = c.bytes(1)
        guard let entry = Keyspace.live(key) else { return r.integer(0) }
        // No expiry counts as an infinite one: never later than GT's, always later than LT's.
        let current = entry.expiresAt == 0 ? nil : Int(entry.expiresAt)
        if onlyWithout && current != nil { return r.integer(0) }
        if onlyWith && current == nil { return r.integer(0) }
        if onlyLater, current.map({ when <= $0 }) ?? true { return r.integer(0) }
        if onlySooner, let current, when >= current { return r.integer(0) }
        if when <= Int(Clock.milliseconds) {
            Keyspace.entries[key] = nil
        } else {
            Keyspace.entries[key]?.expiresAt = UInt64(when)
        }
        r.integer(1)
    }

    static func ttl(_ c: Command, unit: UInt64, _ r: inout Reply) {
        guard let entry = Keyspace.live(c.bytes(1)) else { return r.integer(-2) }
        guard entry.expiresAt != 0 else { return r.integer(-1) }
        let left = entry.expiresAt - min(entry.expiresAt, Clock.milliseconds)
        r.integer(Int((left + unit / 2) / unit))
    }

    static func persist(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard let entry = Keyspace.live(key), entry.expiresAt != 0 else { return r.integer(0) }
        Keyspace.entries[key]?.expiresAt = 0
        r.integer(1)
    }

    static func type(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.simple("none")
        case .string?: r.simple("string")
        case .list?: r.simple("list")
        case .set?: r.simple("set")
        case .hash?: r.simple("hash")
        case .sortedSet?: r.simple("zset")
        }
    }

    // MARK: Lists

    static func push(_ c: Command, front: Bool, _ r: inout Reply) {
        let key = c.bytes(1)
        if Keyspace.live(key) == nil { Keyspace.entries[key] = Entry(value: .list(ByteDeque())) }
        let length = Keyspace.entries[key]?.value.withList { list -> Int in
            for index in 2..<c.count { front ? list.pushFront(c.bytes(index)) : list.pushBack(c.bytes(index)) }
            return list.count
        }
        guard let length else { return r.error(wrongType) }
        r.integer(length)
    }

    static func pop(_ c: Command, front: Bool, _ r: inout Reply) {
        // Redis 7.0 answers LPOP's and RPOP's extra arguments as a wrong count (SPOP's and
        // ZPOPMIN's as a syntax error).
        guard c.count <= 3 else {
            return r.error(bytes("ERR wrong number of arguments for '") + lowercased(c[0]) + bytes("' command"))
        }
        guard case .valid(let count) = PopCount(c) else { return PopCount(c).refuse(&r) }
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return count == nil ? r.null() : r.nullArray() }
        // The reply's room is made before anything is popped: a reply that cannot be sent
        // must not cost the data it carries.
        let replyBytes = Keyspace.peek(key) { value -> Int? in
            guard case .list(let list) = value else { return nil }
            var bytes = Reply.arrayBytes
            for index in 0..<min(count ?? 1, list.count) { bytes += Reply.bulkBytes(list[front ? index : list.count - 1 - index].count) }
            return bytes
        }
        guard let replyBytes else { return r.error(wrongType) }
        guard r.makeRoom(for: replyBytes) else { return r.error(outOfMemory) }
        let popped = Keyspace.entries[key]?.value.withList { list -> [[UInt8]] in
            var values: [[UInt8]] = []
            while values.count < (count ?? 1), let value = front ? list.popFront() : list.popBack() { values.append(value) }
            return values
        } ?? []
        Keyspace.dropIfEmptied(key)
        replyPopped(popped, count: count, &r)
    }

    static func lrange(_ c: Command, _ r: inout Reply) {
        guard let first = Numbers.integer(c[2]), let last = Numbers.integer(c[3]) else { return r.error(notInteger) }
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.array(0)
        case .list(let list)?:
            let range = listRange(first, last, count: list.count)
            r.array(range.count)
            for index in range { r.bulk(list[index]) }
        default: r.error(wrongType)
        }
    }

    static func llen(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .list(let list)?: r.integer(list.count)
        default: r.error(wrongType)
        }
    }

    /// The positions from `first` to `last` inclusive (negative from the end) of a list of
    /// `count`, clamped to it; empty when they cross (LRANGE, LTRIM).
    private static func listRange(_ first: Int, _ last: Int, count: Int) -> Range<Int> {
        let start = max(first < 0 ? count + first : first, 0)
        let end = min(last < 0 ? count + last : last, count - 1)
        return start <= end ? start..<(end + 1) : 0..<0
    }

    /// Where `index` (negative from the end) falls in a list of `count`; nil outside it.
    private static func listPosition(_ index: Int, count: Int) -> Int? {
        let position = index < 0 ? count + index : index
        return position >= 0 && position < count ? position : nil
    }

    /// LINDEX: the key is looked up before the index is read (Redis's order of errors).
    static func lindex(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.null()
        case .list(let list)?:
            guard let index = Numbers.integer(c[2]) else { return r.error(notInteger) }
            if let position = listPosition(index, count: list.count) { r.bulk(list[position]) } else { r.null() }
        default: r.error(wrongType)
        }
    }

    /// LSET: missing key, then type, then index, in Redis's order of errors.
    static func lset(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        switch Keyspace.live(key)?.value {
        case nil: return r.error("ERR no such key")
        case .list?: break
        default: return r.error(wrongType)
        }
        guard let index = Numbers.integer(c[2]) else { return r.error(notInteger) }
        let done = Keyspace.entries[key]?.value.withList { list -> Bool in
            guard let position = listPosition(index, count: list.count) else { return false }
            list[position] = c.bytes(3)
            return true
        }
        done == true ? r.ok() : r.error("ERR index out of range")
    }

    /// LTRIM: Redis's clamping.
    static func ltrim(_ c: Command, _ r: inout Reply) {
        guard let first = Numbers.integer(c[2]), let last = Numbers.integer(c[3]) else { return r.error(notInteger) }
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return r.ok() }
        let trimmed: Void? = Keyspace.entries[key]?.value.withList { list in list.keep(listRange(first, last, count: list.count)) }
        guard trimmed != nil else { return r.error(wrongType) }
        Keyspace.dropIfEmptied(key)
        r.ok()
    }

    /// LREM key count element: count > 0 from the head, < 0 from the tail, 0 all.
    static func lrem(_ c: Command, _ r: inout Reply) {
        guard let count = Numbers.integer(c[2]) else { return r.error(notInteger) }
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return r.integer(0) }
        let removed = Keyspace.entries[key]?.value.withList { list in
            list.remove(c.bytes(3), limit: count == 0 ? nil : Int(clamping: count.magnitude), fromBack: count < 0)
        }
        guard let removed else { return r.error(wrongType) }
        Keyspace.dropIfEmptied(key)
        r.integer(removed)
    }

    // MARK: Sets and hashes

    static func sadd(_ c: Command, _ r: inout Reply) {
        // The hint alone, not the entry: a copy of the entry alive during the change would
        // make the set copy itself on write.
        let key = c.bytes(1), hint = Keyspace.live(key)?.hint
        if hint == nil { Keyspace.entries[key] = Entry(value: .set([])) }
        var outgrew = false
        let added = Keyspace.entries[key]?.value.withSet { set -> Int in
            var added = 0
            for index in 2..<c.count where set.insert(c.bytes(index)).inserted { added += 1 }
            outgrew = hint != .large && outgrowsIntset(count: set.count, c, members: 2..<c.count)
            return added
        }
        guard let added else { return r.error(wrongType) }
        if outgrew { markLarge(key) }
        r.integer(added)
    }

    static func spop(_ c: Command, _ r: inout Reply) {
        guard case .valid(let count) = PopCount(c) else { return PopCount(c).refuse(&r) }
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return count == nil ? r.null() : r.set(0) }
        guard let members = Keyspace.peek(key, { value -> [[UInt8]]? in
            guard case .set(let set) = value else { return nil }
            return Array(set.prefix(count ?? 1))
        }) else { return r.error(wrongType) }
        guard r.makeRoom(for: members.reduce(Reply.arrayBytes) { $0 + Reply.bulkBytes($1.count) }) else { return r.error(outOfMemory) }
        // Each member is removed by its hash: O(1) apiece, not a scan from the start of the table.
        _ = Keyspace.entries[key]?.value.withSet { set in
            if members.count == set.count { set.removeAll() } else { for member in members { set.remove(member) } }
        }
        Keyspace.dropIfEmptied(key)
        replyPopped(members, count: count, asSet: true, &r)
    }

    /// One value (or nil) when no count was given, else an array (SPOP: a set) of what was popped.
    private static func replyPopped(_ popped: [[UInt8]], count: Int?, asSet: Bool = false, _ r: inout Reply) {
        if count == nil { return popped.first.map { r.bulk($0) } ?? r.null() }
        asSet ? r.set(popped.count) : r.array(popped.count)
        for value in popped { r.bulk(value) }
    }

    static func scard(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .set(let set)?: r.integer(set.count)
        default: r.error(wrongType)
        }
    }

    static func sismember(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .set(let set)?: r.integer(set.contains(c.bytes(2)) ? 1 : 0)
        default: r.error(wrongType)
        }
    }

    static func srem(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return r.integer(0) }
        let removed = Keyspace.entries[key]?.value.withSet { set -> Int in
            var removed = 0
            for index in 2..<c.count where set.remove(c.bytes(index)) != nil { removed += 1 }
            return removed
        }
        guard let removed else { return r.error(wrongType) }
        Keyspace.dropIfEmptied(key)
        r.integer(removed)
    }

    static func smismember(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil:
            r.array(c.count - 2)
            for _ in 2..<c.count { r.integer(0) }
        case .set(let set)?:
            r.array(c.count - 2)
            for index in 2..<c.count { r.integer(set.contains(c.bytes(index)) ? 1 : 0) }
        default: r.error(wrongType)
        }
    }

    static func smembers(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.set(0)
        case .set(let set)?:
            r.set(set.count)
            for member in set { r.bulk(member) }
        default: r.error(wrongType)
        }
    }

    static func hset(_ c: Command, _ r: inout Reply) {
        guard c.count % 2 == 0 else { return r.error("ERR wrong number of arguments for 'hset' command") }
        guard let added = setFields(c) else { return r.error(wrongType) }
        r.integer(added)
    }

    /// HMSET: HSET's older spelling, answering +OK.
    static func hmset(_ c: Command, _ r: inout Reply) {
        guard c.count % 2 == 0 else { return r.error("ERR wrong number of arguments for 'hmset' command") }
        guard setFields(c) != nil else { return r.error(wrongType) }
        r.simple("OK")
    }

    /// Sets the field-value pairs from argument 2 on in the hash under argument 1 (made
    /// when absent); how many fields are new, or nil when the key holds another type.
    private static func setFields(_ c: Command) -> Int? {
        let key = c.bytes(1), hint = Keyspace.live(key)?.hint
        if hint == nil { Keyspace.entries[key] = Entry(value: .hash([:])) }
        var outgrew = false
        defer { if outgrew { markLarge(key) } }
        return Keyspace.entries[key]?.value.withHash { hash -> Int in
            var added = 0
            for index in stride(from: 2, to: c.count, by: 2) where hash.updateValue(c.bytes(index + 1), forKey: c.bytes(index)) == nil { added += 1 }
            outgrew = hint != .large
                && outgrowsListpack(count: hash.count, limit: CompactLimits.hashEntries, c, elements: 2..<c.count)
            return added
        }
    }

    static func hget(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.null()
        case .hash(let hash)?: if let value = hash[c.bytes(2)] { r.bulk(value) } else { r.null() }
        default: r.error(wrongType)
        }
    }

    static func hsetnx(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1), hint = Keyspace.live(key)?.hint
        if hint == nil { Keyspace.entries[key] = Entry(value: .hash([:])) }
        var outgrew = false
        let added = Keyspace.entries[key]?.value.withHash { hash -> Bool in
            // As Redis: a long field or value converts the hash even when the field exists.
            defer {
                outgrew = hint != .large
                    && outgrowsListpack(count: hash.count, limit: CompactLimits.hashEntries, c, elements: 2...3)
            }
            guard hash[c.bytes(2)] == nil else { return false }
            hash[c.bytes(2)] = c.bytes(3)
            return true
        }
        guard let added else { return r.error(wrongType) }
        if outgrew { markLarge(key) }
        r.integer(added ? 1 : 0)
    }

    static func hmget(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil:
            r.array(c.count - 2)
            for _ in 2..<c.count { r.null() }
        case .hash(let hash)?:
            r.array(c.count - 2)
            for index in 2..<c.count { if let value = hash[c.bytes(index)] { r.bulk(value) } else { r.null() } }
        default: r.error(wrongType)
        }
    }

    static func hdel(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return r.integer(0) }
        let removed = Keyspace.entries[key]?.value.withHash { hash -> Int in
            var removed = 0
            for index in 2..<c.count where hash.removeValue(forKey: c.bytes(index)) != nil { removed += 1 }
            return removed
        }
        guard let removed else { return r.error(wrongType) }
        Keyspace.dropIfEmptied(key)
        r.integer(removed)
    }

    /// A read of the hash under argument 1: `absent` when there is none, WRONGTYPE when
    /// the key holds another type.
    static func hashRead(_ c: Command, _ r: inout Reply, absent: (inout Reply) -> Void, _ body: ([[UInt8]: [UInt8]], inout Reply) -> Void) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: absent(&r)
        case .hash(let hash)?: body(hash, &r)
        default: r.error(wrongType)
        }
    }

    /// HGETALL, HKEYS, HVALS: fields and values in the hash's own order, which Redis
    /// leaves unspecified too.
    static func hashContents(_ c: Command, fields: Bool, values: Bool, _ r: inout Reply) {
        hashRead(c, &r, absent: { fields && values ? $0.map(0) : $0.array(0) }) { hash, r in
            fields && values ? r.map(hash.count) : r.array(hash.count)
            for (field, value) in hash {
                if fields { r.bulk(field) }
                if values { r.bulk(value) }
            }
        }
    }

    // MARK: Sorted sets

    /// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]: the members
    /// added (with CH, added or changed); with INCR, the member's new score, or null when a
    /// condition left it alone.
    static func zadd(_ c: Command, _ r: inout Reply) {
        var onlyNew = false, onlyExisting = false, onlyHigher = false, onlyLower = false
        var countChanged = false, increment = false
        var first = 2
        while first < c.count {
            if c.isArgument(first, "nx") { onlyNew = true } else if c.isArgument(first, "xx") { onlyExisting = true }
            else if c.isArgument(first, "gt") { onlyHigher = true } else if c.isArgument(first, "lt") { onlyLower = true }
            else if c.isArgument(first, "ch") { countChanged = true } else if c.isArgument(first, "incr") { increment = true }
            else { break }
            first += 1
        }
        let pairs = c.count - first
        guard pairs > 0, pairs % 2 == 0 else { return r.error("ERR syntax error") }
        if onlyNew && onlyExisting { return r.error("ERR XX and NX options at the same time are not compatible") }
        if (onlyHigher || onlyLower) && onlyNew || onlyHigher && onlyLower {
            return r.error("ERR GT, LT, and/or NX options at the same time are not compatible")
        }
        if increment && pairs > 2 { return r.error("ERR INCR option supports a single increment-element pair") }
        for index in stride(from: first, to: c.count, by: 2) where Numbers.score(c[index]) == nil {
            return r.error("ERR value is not a valid float")
        }
        let key = c.bytes(1), found = sortedSetEntry(key), hint = found?.hint
        switch found {
        case nil:
            if onlyExisting { return increment ? r.null() : r.integer(0) }
            Keyspace.entries[key] = Entry(value: .sortedSet(SortedSet()))
        case (_, true)?: break
        default: return r.error(wrongType)
        }
        var counted = 0, lastScore: Double? = nil, notANumber = false, outgrew = false
        defer { if outgrew { markLarge(key) } }
        _ = Keyspace.entries[key]?.value.withSortedSet { set in
            // Long members that went in make it a skiplist (a member is never shortened).
            defer {
                outgrew = hint != .large
                    && outgrowsListpack(
                        count: set.count, limit: CompactLimits.sortedSetEntries, c,
                        elements: stride(from: first + 1, to: c.count, by: 2).filter { set.score(of: c.bytes($0)) != nil })
            }
            for index in stride(from: first, to: c.count, by: 2) {
                let member = c.bytes(index + 1)
                var score = Numbers.score(c[index])!
                if let current = set.score(of: member) {
                    if onlyNew { continue }
                    if increment {
                        score += current
                        if score.isNaN { notANumber = true; return }
                    }
                    if onlyHigher && score <= current || onlyLower && score >= current { continue }
                    lastScore = score
                    guard score != current else { continue }
                    _ = set.add(member, score: score)
                    if countChanged { counted += 1 }
                } else if !onlyExisting {
                    _ = set.add(member, score: score)
                    lastScore = score
                    counted += 1
                }
            }
        }
        Keyspace.dropIfEmptied(key)
        if notANumber { return r.error("ERR resulting score is not a number (NaN)") }
        guard increment else { return r.integer(counted) }
        if let lastScore { r.score(lastScore) } else { r.null() }
    }

    /// The encoding hint of the entry under `key` and whether it holds a sorted set; nil when
    /// there is none. The entry itself is not kept: ZADD and ZINCRBY then change the set in
    /// place, and a live copy would make it copy itself on write.
    private static func sortedSetEntry(_ key: [UInt8]) -> (hint: EncodingHint, isSortedSet: Bool)? {
        guard let entry = Keyspace.live(key) else { return nil }
        if case .sortedSet = entry.value { return (entry.hint, true) }
        return (entry.hint, false)
    }

    /// ZINCRBY key increment member: ZADD key INCR increment member.
    static func zincrby(_ c: Command, _ r: inout Reply) {
        guard let amount = Numbers.score(c[2]) else { return r.error("ERR value is not a valid float") }
        let key = c.bytes(1), member = c.bytes(3), found = sortedSetEntry(key), hint = found?.hint
        switch found {
        case nil: Keyspace.entries[key] = Entry(value: .sortedSet(SortedSet()))
        case (_, true)?: break
        default: return r.error(wrongType)
        }
        var outgrew = false
        let score = Keyspace.entries[key]?.value.withSortedSet { set -> Double? in
            // A new member's score is the increment itself (-0 stays -0 in the reply, as in Redis).
            let score = set.score(of: member).map { $0 + amount } ?? amount
            if score.isNaN { return nil }
            _ = set.add(member, score: score)
            outgrew = hint != .large
                && outgrowsListpack(count: set.count, limit: CompactLimits.sortedSetEntries, c, elements: 3...3)
            return score
        } ?? nil
        if outgrew { markLarge(key) }
        Keyspace.dropIfEmptied(key)
        guard let score else { return r.error("ERR resulting score is not a number (NaN)") }
        r.score(score)
    }

    /// ZSCORE key member and ZMSCORE key member...: scores as Redis writes them, null for
    /// a member (or key) that is not there.
    static func zscore(_ c: Command, many: Bool, _ r: inout Reply) {
        var set: SortedSet? = nil
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: break
        case .sortedSet(let found)?: set = found
        default: return r.error(wrongType)
        }
        if many { r.array(c.count - 2) }
        for index in 2..<c.count {
            if let score = set?.score(of: c.bytes(index)) { r.score(score) } else { r.null() }
        }
    }

    /// ZREM key member...: how many were removed.
    static func zrem(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        switch Keyspace.live(key)?.value {
        case nil: return r.integer(0)
        case .sortedSet?: break
        default: return r.error(wrongType)
        }
        let count = Keyspace.entries[key]?.value.withSortedSet { set -> Int in
            (2..<c.count).reduce(0) { $0 + (set.remove(c.bytes($1)) ? 1 : 0) }
        } ?? 0
        Keyspace.dropIfEmptied(key)
        r.integer(count)
    }

    static func zpopmin(_ c: Command, _ r: inout Reply) {
        guard case .valid(let given) = PopCount(c) else { return PopCount(c).refuse(&r) }
        let count = given ?? 1
        let key = c.bytes(1)
        guard Keyspace.live(key) != nil else { return r.array(0) }
        let replyBytes = Keyspace.peek(key) { value -> Int? in
            guard case .sortedSet(let set) = value else { return nil }
            return set.reduceLowest(count, Reply.arrayBytes) { $0 + Reply.bulkBytes($1.member.count) + Reply.bulkBytes(DoubleText.text($1.score).count) }
        }
        guard let replyBytes else { return r.error(wrongType) }
        guard r.makeRoom(for: replyBytes) else { return r.error(outOfMemory) }
        let popped = Keyspace.entries[key]?.value.withSortedSet { set in set.popMinimum(count) } ?? []
        Keyspace.dropIfEmptied(key)
        // Without a count, one member and its score; with one, pairs (arrays of two in RESP3).
        given == nil ? r.array(popped.count * 2) : r.pairs(popped.count)
        for element in popped {
            r.bulk(element.member)
            r.score(element.score)
        }
    }

    static func zcard(_ c: Command, _ r: inout Reply) {
        switch Keyspace.live(c.bytes(1))?.value {
        case nil: r.integer(0)
        case .sortedSet(let set)?: r.integer(set.count)
        default: r.error(wrongType)
        }
    }

    // MARK: The database

    static func flush(_ c: Command, _ r: inout Reply) {
        Keyspace.entries.removeAll()
        r.ok()
    }

    static func select(_ c: Command, _ r: inout Reply) {
        guard Numbers.integer(c[1]) == 0 else { return r.error("ERR DB index is out of range") }
        r.ok()
    }

    /// MOVE key db: the appliance has one database, so any other is out of range.
    static func move(_ c: Command, _ r: inout Reply) {
        guard let database = Numbers.integer(c[2]) else { return r.error(notInteger) }
        guard database == 0 else { return r.error("ERR DB index is out of range") }
        r.error("ERR source and destination objects are the same")
    }

    /// SWAPDB index1 index2: only database 0 exists, and swapping it with itself changes nothing.
    static func swapdb(_ c: Command, _ r: inout Reply) {
        guard let first = Numbers.integer(c[1]) else { return r.error("ERR invalid first DB index") }
        guard let second = Numbers.integer(c[2]) else { return r.error("ERR invalid second DB index") }
        guard first == 0 && second == 0 else { return r.error("ERR DB index is out of range") }
        r.ok()
    }
}

/// The optional count of LPOP, RPOP, SPOP and ZPOPMIN (`KEY [count]`).
enum PopCount {
    case valid(Int?)
    case tooManyArguments
    case notACount

    init(_ c: Command) {
        guard c.count <= 3 else { self = .tooManyArguments; return }
        guard c.count == 3 else { self = .valid(nil); return }
        guard let value = Numbers.integer(c[2]), value >= 0 else { self = .notACount; return }
        self = .valid(value)
    }

    func refuse(_ r: inout Reply) {
        if case .notACount = self { r.error("ERR value is out of range, must be positive") } else { r.error("ERR syntax error") }
    }
}

extension Value {
    mutating func withString<R>(_ body: (inout [UInt8]) -> R) -> R? {
        guard case .string(var value) = self else { return nil }
        self = .list(ByteDeque())
        defer { self = .string(value) }
        return body(&value)
    }
}

func bytes(_ text: StaticString) -> [UInt8] { Array(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }

func lowercased(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    bytes.prefix(128).map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }
}
