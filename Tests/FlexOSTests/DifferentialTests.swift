import Foundation
import Testing

/// The appliance against Debian's redis-server in the same run: the same random command
/// streams (valid and invalid arguments, wrong types, pipelined) must get the same replies,
/// compared as multisets where Redis leaves the order unspecified.
@Suite(.tags(.boot, .redis), .beyondTheUnitTier) struct DifferentialTests {
    /// Every family is compared in both: no isolation, and the parser in a VM of its own.
    static let conformations = ["Configs/kvstore-fcalls.yaml", "Configs/kvstore-parser-vmept2.yaml"]
    /// Each data type's own test: this many clients at once, each sending this many rounds
    /// of 200 commands: 100,000 commands.
    static let clientsPerType = 3
    static let roundsPerType = 167
    /// Every family runs this many times its rounds: 1 in CI; more from FLEXOS_DIFFERENTIAL_SCALE
    /// (Benchmarks/differential.sh), for longer streams than CI has time for.
    static let scale = max(1, ProcessInfo.processInfo.environment["FLEXOS_DIFFERENTIAL_SCALE"].flatMap { Int($0) } ?? 1)

    /// The hash family: HSET, HMSET, HSETNX, HDEL, HGET, HMGET, HLEN, HEXISTS, HSTRLEN,
    /// HGETALL, HKEYS, HVALS, on a few keys (one of them a string), with arities and
    /// types Redis refuses.
    @Test(arguments: conformations)
    func hashesAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func field() -> String { "f\(Int.random(in: 0..<40, using: &random))" }
        func value() -> String { String(repeating: "v", count: Int.random(in: 0..<12, using: &random)) }
        let setup = [["SET", "s", "text"]]
        try Self.compare(
            rounds: Self.roundsPerType, on: conformation, clients: Self.clientsPerType,
            keys: ["h1", "h2", "s", "missing"], setup: setup,
            unordered: ["HGETALL": true, "HKEYS": false, "HVALS": false]
        ) {
            let key = pick(["h1", "h2", "s", "missing"])
            switch Int.random(in: 0..<14, using: &random) {
            case 0, 1:
                return ["HSET", key] + (0..<Int.random(in: 1...4, using: &random)).flatMap { _ in [field(), value()] }
            case 2: return ["HMSET", key, field(), value()]
            case 3: return ["HSETNX", key, field(), value()]
            case 4, 5: return ["HDEL", key] + (0..<Int.random(in: 1...3, using: &random)).map { _ in field() }
            case 6: return ["HGET", key, field()]
            case 7: return ["HMGET", key, field(), field()]
            case 8: return ["HLEN", key]
            case 9: return ["HEXISTS", key, field()]
            case 10: return ["HSTRLEN", key, field()]
            case 11: return [pick(["HGETALL", "HKEYS", "HVALS"]), key]
            case 12: return [pick(["HSET", "HMSET"]), key, field()]  // a field without its value
            default: return [pick(["HSETNX", "HLEN", "HGETALL", "HDEL"]), key, field(), value(), value()]
            }
        }
    }

    /// Strings and sets: SETNX, GETSET, GETDEL, MSETNX, GETRANGE, SETEX, PSETEX, SREM,
    /// SMISMEMBER among SET, GET, SADD and SMEMBERS, on strings, sets and a hash.
    @Test(arguments: conformations)
    func stringsAndSetsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["a", "b", "c", "set1", "set2", "h", "missing"]) }
        func text() -> String { pick(["", "x", "hello", "hello world", "0123456789"]) }
        func index() -> String {
            pick(["\(Int.random(in: -12...12, using: &random))", "x", "9223372036854775807", "-9223372036854775808"])
        }
        func member() -> String { "m\(Int.random(in: 0..<15, using: &random))" }
        try Self.compare(
            rounds: Self.roundsPerType, on: conformation, clients: Self.clientsPerType,
            keys: ["a", "b", "c", "set1", "set2", "h", "missing"], setup: [["HSET", "h", "f", "v"]],
            unordered: ["SMEMBERS": false]
        ) {
            switch Int.random(in: 0..<16, using: &random) {
            case 0: return ["SET", key(), text()]
            case 1: return ["GET", key()]
            case 2: return ["SETNX", key(), text()]
            case 3: return ["GETSET", key(), text()]
            case 4: return ["GETDEL", key()]
            case 5: return ["MSETNX"] + (0..<Int.random(in: 1...3, using: &random)).flatMap { _ in [key(), text()] }
            case 6: return ["GETRANGE", key(), index(), index()]
            case 7:
                return [
                    pick(["SETEX", "PSETEX"]), key(), pick(["100000", "0", "-5", "x", "9223372036854775807"]), text()
                ]
            case 8: return ["SADD", key()] + (0..<Int.random(in: 1...4, using: &random)).map { _ in member() }
            case 9: return ["SREM", key()] + (0..<Int.random(in: 1...3, using: &random)).map { _ in member() }
            case 10: return ["SMISMEMBER", key(), member(), member()]
            case 11: return ["SMEMBERS", key()]
            case 12: return ["EXISTS", key(), key()]
            case 13: return [pick(["MSETNX", "GETRANGE", "SMISMEMBER"]), key()]  // too few arguments
            case 14: return [pick(["SETNX", "GETSET", "GETDEL"]), key(), text(), text()]  // too many
            default: return ["TYPE", key()]
            }
        }
    }

    /// Lists: LINDEX, LSET, LTRIM, LREM among pushes, pops and LRANGE, with indexes past
    /// either end, negative ones and non-integers.
    /// RENAME, RENAMENX, UNLINK, TOUCH and KEYS (glob patterns, answered as sets) over keys of
    /// every type, some expiring.
    @Test(arguments: conformations)
    func keyspaceCommandsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String {
            pick(["a", "b", "ab", "abc", "b1", "b2", "list", "hash", "set", "zset", "missing", "[x]", "a*"])
        }
        func pattern() -> String {
            pick([
                "*", "a*", "*b*", "?", "??", "a?c", "b[12]", "b[^1]", "[a-c]*", "[c-a]*", "\\[x]", "a\\*", "[ab",
                "*1", "l*t", "nothing", ""
            ])
        }
        let setup = [
            ["RPUSH", "list", "x", "y"], ["HSET", "hash", "f", "v"], ["SET", "[x]", "1"], ["SET", "a*", "2"],
            ["SADD", "set", "m", "n"], ["ZADD", "zset", "1", "m", "2", "n"]
        ]
        try Self.compare(
            rounds: 30, on: conformation, setup: setup, unordered: ["KEYS": false, "SMEMBERS": false]
        ) {
            switch Int.random(in: 0..<14, using: &random) {
            // COPY, then a change to one side that the other must not see.
            case 10:
                return ["COPY", key(), key()]
                    + (0..<Int.random(in: 0...2, using: &random)).flatMap { _ in
                        pick(["REPLACE", "replace", "DB", "FOO"]) == "DB"
                            ? ["DB", pick(["0", "x"])] : [pick(["REPLACE", "FOO"])]
                    }
            case 11: return [pick(["RPUSH", "SADD"]), key(), pick(["p", "q"])]
            case 12: return [pick(["ZADD", "HSET"]), key(), pick(["3", "f"]), pick(["q", "g"])]
            case 13:
                let name = key()
                return pick(["LRANGE", "SMEMBERS", "ZRANGE", "HLEN", "GET"]) == "LRANGE"
                    ? ["LRANGE", name, "0", "-1"] : [pick(["SMEMBERS", "HLEN", "GET", "STRLEN"]), name]
            case 0: return ["SET", key(), pick(["v", "w"])]
            case 1: return ["RENAME", key(), key()]
            case 2: return ["RENAMENX", key(), key()]
            case 3: return ["UNLINK", key(), key()]
            case 4: return ["TOUCH", key(), key(), key()]
            case 5: return ["KEYS", pattern()]
            // A shorter expiry would pass at different moments in the two servers.
            case 6: return ["PSETEX", key(), "100000", "e"]
            case 7: return ["RPUSH", key(), "z"]
            case 8:
                return [pick(["RENAME", "RENAMENX", "KEYS"])]
                    + (Int.random(in: 0...1, using: &random) == 0 ? [] : [key(), key(), key()])
            default: return ["TYPE", key()]
            }
        }
    }

    /// RANDOMKEY (not compared: the two servers pick differently): null in an empty
    /// database, and over many calls every live key and only live keys.
    @Test(arguments: conformations)
    func randomKeyAnswersLiveKeys(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        #expect(try server.cliText(["randomkey"]) == "\n")
        _ = try server.cliText(["mset", "a", "1", "b", "2", "c", "3"])
        _ = try server.cliText(["pexpire", "c", "1"])
        Thread.sleep(forTimeInterval: 0.05)
        let client = try RawConnection(port: server.port)
        client.send((0..<300).flatMap { _ in FlexOSTests.resp("RANDOMKEY") } + FlexOSTests.resp("PING"))
        let replies = client.read { $0.hasSuffix("+PONG\r\n") }.text.split(separator: "\r\n").filter {
            !$0.hasPrefix("$")
        }
        #expect(Set(replies) == ["a", "b", "+PONG"], "\(Set(replies))")
    }

    /// SRANDMEMBER, HRANDFIELD and ZRANDMEMBER, every count and option: as many members as
    /// redis-server answers, each of the collection (with its own value or score), distinct
    /// for a positive count; errors word for word. redis-cli speaks RESP2 or RESP3 (`-3`) at
    /// random; its plain output is the same for both.
    @Test(arguments: conformations)
    func randomMembersComeFromTheCollection(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        func ask(_ port: UInt16, _ arguments: [String], resp3: Bool = false) throws -> [String] {
            let text = String(
                decoding: try Redis.run("redis-cli", ["-p", "\(port)"] + (resp3 ? ["-3"] : []) + arguments),
                as: UTF8.self)
            return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }
        let members = (0..<10).map { "m\($0)" }
        let setup = [
            ["sadd", "s"] + members, ["hset", "h"] + (0..<10).flatMap { ["m\($0)", "v\($0)"] },
            ["zadd", "z"] + (0..<10).flatMap { ["\($0)", "m\($0)"] }, ["set", "str", "x"]
        ]
        for command in setup {
            _ = try ask(server.port, command)
            _ = try ask(redis.port, command)
        }
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        for _ in 0..<100 {
            let name = pick(["srandmember", "hrandfield", "zrandmember"])
            var command = [name, pick(["s", "h", "z", "z", "s", "h", "str", "missing"])]
            if Int.random(in: 0..<5, using: &random) > 0 {
                command.append(pick(["0", "1", "3", "10", "25", "-1", "-3", "-25", "x", "-9223372036854775808"]))
                if Int.random(in: 0..<3, using: &random) == 0 {
                    command.append(pick(["withvalues", "withscores", "x"]))
                }
            }
            let resp3 = Bool.random(using: &random)
            let got = try ask(server.port, command, resp3: resp3)
            let expected = try ask(redis.port, command, resp3: resp3)
            let isError = expected.first.map { $0.hasPrefix("ERR") || $0.hasPrefix("WRONGTYPE") } ?? false
            guard !isError, !(expected == [""] && command.count == 2) else {
                #expect(got == expected, "\(command)")
                continue
            }
            #expect(got.count == expected.count, "\(command): \(got) against \(expected)")
            let paired = command.count == 4 && expected.count > 1
            let picked = paired ? stride(from: 0, to: got.count - 1, by: 2).map { got[$0] } : got
            #expect(picked.allSatisfy { members.contains($0) } || got == [""], "\(command): \(got)")
            if paired {
                for index in stride(from: 0, to: got.count - 1, by: 2) {
                    let number = got[index].dropFirst()
                    #expect(got[index + 1] == (name == "hrandfield" ? "v\(number)" : "\(number)"), "\(command): \(got)")
                }
            }
            if let count = command.count > 2 ? Int(command[2]) : nil, count > 0 {
                #expect(Set(picked).count == picked.count, "\(command): \(got)")
            }
        }
    }

    /// TIME is the host's wall clock, as redis-server's is: both answer within a second of
    /// each other, in seconds and microseconds.
    @Test(arguments: conformations)
    func timeIsTheHostsWallClock(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        func seconds(_ text: String) -> Double? {
            let parts = text.split(whereSeparator: \.isNewline).compactMap { Double($0) }
            return parts.count == 2 && parts[1] < 1_000_000 ? parts[0] + parts[1] / 1e6 : nil
        }
        let reference = try #require(
            seconds(String(decoding: try Redis.run("redis-cli", ["-p", "\(redis.port)", "time"]), as: UTF8.self)))
        let got = try #require(seconds(try server.cliText(["time"])))
        #expect(abs(got - reference) < 1, "appliance \(got), redis-server \(reference)")
    }

    /// One database, 0: SELECT, MOVE and SWAPDB answer as Redis does for an index it lacks.
    @Test(arguments: conformations)
    func theOneDatabaseIsZero(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        func ask(_ arguments: [String]) throws -> String {
            try server.cliText(arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try ask(["set", "k", "v"])
        #expect(try ask(["select", "1"]) == "ERR DB index is out of range")
        #expect(try ask(["move", "k", "1"]) == "ERR DB index is out of range")
        #expect(try ask(["move", "k", "0"]) == "ERR source and destination objects are the same")
        #expect(try ask(["move", "k", "x"]) == "ERR value is not an integer or out of range")
        #expect(try ask(["swapdb", "0", "0"]) == "OK")
        #expect(try ask(["swapdb", "0", "1"]) == "ERR DB index is out of range")
        #expect(try ask(["swapdb", "x", "0"]) == "ERR invalid first DB index")
        #expect(try ask(["role"]) == "master\n0")
        #expect(try ask(["get", "k"]) == "v")
    }

    /// The families the appliance leaves out are refused by name, not as unknown commands.
    @Test(arguments: conformations)
    func outOfScopeFamiliesAreNamed(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let families = [
            ("save", "persistence"), ("wait", "replication"), ("cluster", "cluster"), ("eval", "scripting"),
            ("module", "modules"), ("xadd", "streams"), ("subscribe", "pub/sub"), ("publish", "pub/sub"),
            ("monitor", "monitoring")
        ]
        for (command, family) in families {
            #expect(
                try server.cliText([command.uppercased(), "x", "y"]).trimmingCharacters(in: .whitespacesAndNewlines)
                    == "ERR '\(command)' is not supported: this appliance leaves out \(family)")
        }
        #expect(try server.cliText(["nosuchcommand"]).hasPrefix("ERR unknown command 'nosuchcommand'"))
    }

    /// INFO's sections: the headers redis-server gives for the same requests, in its order
    /// (the fields differ: the appliance has no clients, CPU or persistence counters).
    @Test(arguments: conformations)
    func infoAnswersTheSectionsAsked(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        let reference = try RawConnection(port: redis.port)
        for request in [["info", "memory"], ["info", "replication", "memory"], ["info", "keyspace"], ["info", "bogus"]]
        {
            reference.send(FlexOSTests.resp(request.map { Array($0.utf8) }) + FlexOSTests.resp("PING"))
            let expected = reference.read { $0.hasSuffix("+PONG\r\n") }.text
            let headers = { (text: String) in text.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("#") } }
            let got = try server.cliText(request)
            #expect(headers(got) == headers(expected), "\(request): \(got)")
        }
        let all = try server.cliText(["info"])
        #expect(
            all.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("#") } == [
                "# Server", "# Memory", "# Persistence", "# Replication", "# Keyspace"
            ])
        #expect(try server.cliText(["info", "bogus"]).allSatisfy(\.isNewline))
    }

    /// SINTER, SUNION, SDIFF (as sets), their STORE forms, SINTERCARD (with LIMIT and its
    /// errors) and SMOVE, over sets, missing keys and keys of other types.
    @Test(arguments: conformations)
    func setAlgebraAnswersAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["s1", "s2", "s3", "s4", "missing", "str"]) }
        func keys() -> [String] { (0..<Int.random(in: 1...3, using: &random)).map { _ in key() } }
        func member() -> String { "m\(Int.random(in: 0..<8, using: &random))" }
        try Self.compare(
            rounds: Self.roundsPerType, on: conformation, clients: Self.clientsPerType,
            keys: ["s1", "s2", "s3", "s4", "missing", "str"], setup: [["SET", "str", "text"]],
            unordered: ["SINTER": false, "SUNION": false, "SDIFF": false, "SMEMBERS": false]
        ) {
            switch Int.random(in: 0..<12, using: &random) {
            case 0, 1: return ["SADD", pick(["s1", "s2", "s3", "s4"])] + (0..<3).map { _ in member() }
            case 2: return ["SREM", key(), member(), member()]
            case 3: return [pick(["SINTER", "SUNION", "SDIFF"])] + keys()
            case 4: return [pick(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), key()] + keys()
            case 5:
                let named = keys()
                let count = pick(["\(named.count)", "0", "-1", "9", "x"])
                let limit = pick(["", "LIMIT 1", "LIMIT 0", "LIMIT -2", "LIMIT", "LIMIT x", "LIMITS 2"])
                return ["SINTERCARD", count] + named + limit.split(separator: " ").map(String.init)
            case 6: return ["SMOVE", key(), key(), member()]
            case 7: return ["SMEMBERS", key()]
            case 8: return ["SCARD", key()]
            case 9: return [pick(["SINTERSTORE", "SMOVE", "SINTERCARD", "SINTER"])]  // too few arguments
            case 10: return ["SET", "str", "text"]
            default: return ["TYPE", key()]
            }
        }
    }

    @Test(arguments: conformations)
    func listsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["l1", "l2", "s", "missing"]) }
        func element() -> String { pick(["a", "b", "c", ""]) }
        func index() -> String {
            pick(["\(Int.random(in: -8...8, using: &random))", "x", "9223372036854775807", "-9223372036854775808"])
        }
        try Self.compare(
            rounds: Self.roundsPerType, on: conformation, clients: Self.clientsPerType,
            keys: ["l1", "l2", "s", "missing"], setup: [["SET", "s", "text"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<12, using: &random) {
            case 0, 1, 2:
                return [pick(["LPUSH", "RPUSH"]), key()]
                    + (0..<Int.random(in: 1...5, using: &random)).map { _ in element() }
            case 3:
                return [pick(["LPOP", "RPOP"]), key()] + [[], ["1"], ["2", "3"]][Int.random(in: 0..<3, using: &random)]
            case 4: return ["LINDEX", key(), index()]
            case 5: return ["LSET", key(), index(), element()]
            case 6: return ["LTRIM", key(), index(), index()]
            case 7: return ["LREM", key(), pick(["0", "1", "2", "-1", "-2", "x", "-9223372036854775808"]), element()]
            case 8: return ["LRANGE", key(), "0", "-1"]
            case 9: return ["LLEN", key()]
            case 10: return [pick(["LINDEX", "LSET", "LTRIM", "LREM"]), key()]  // too few arguments
            default: return ["EXISTS", key()]
            }
        }
    }

    /// SETRANGE, SETBIT, GETBIT, BITCOUNT (bytes and bits, negative and crossed ranges) and
    /// HINCRBY (overflow, non-integer fields), with GET to read the strings back.
    @Test(arguments: conformations)
    func bitsRangesAndCountersAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["s", "t", "missing", "h", "list"]) }
        func offset() -> String { pick(["0", "1", "3", "7", "8", "15", "33", "-1", "x", "4294967296"]) }
        // "08" and "-0" are not integers to Redis (string2ll): no leading zeros.
        func index() -> String { pick(["0", "1", "2", "-1", "-2", "-5", "9", "x", "08", "-0"]) }
        let setup = [["HSET", "h", "n", "5", "text", "abc", "big", "9223372036854775800"], ["RPUSH", "list", "x"]]
        try Self.compare(
            rounds: 30, on: conformation, setup: setup, unordered: [:]
        ) {
            switch Int.random(in: 0..<17, using: &random) {
            case 0: return ["SETRANGE", key(), pick(["0", "2", "5", "-1", "x"]), pick(["", "ab", "xyz"])]
            case 1, 2: return ["SETBIT", key(), offset(), pick(["0", "1", "1", "2", "x"])]
            case 3: return ["GETBIT", key(), offset()]
            case 4, 5:
                let mode = pick(["", "BYTE", "BIT", "bit", "WORD"])
                return ["BITCOUNT", key(), index(), index()] + (mode.isEmpty ? [] : [mode])
            case 6: return ["BITCOUNT", key()] + (Int.random(in: 0...1, using: &random) == 0 ? [] : [index()])
            case 7: return ["GET", key()]
            case 8:
                return [
                    "HINCRBY", pick(["h", "h", "s", "missing"]), pick(["n", "text", "big", "new"]),
                    pick(["1", "-3", "10", "x", "9223372036854775807"])
                ]
            case 9: return ["HGET", "h", pick(["n", "big", "new"])]
            case 10: return ["SET", key(), pick(["a", "\u{ff}", "hello"])]
            case 11, 12:
                let range = [
                    [], [index()], [index(), index()], [index(), index(), pick(["BYTE", "BIT", "bit", "WORD"])]
                ]
                return ["BITPOS", key(), pick(["0", "1", "1", "2", "x"])] + range[Int.random(in: 0..<4, using: &random)]
            case 13:
                let operation = pick(["AND", "OR", "XOR", "NOT", "and", "NAND"])
                return ["BITOP", operation, pick(["d", "s", "h"])]
                    + (0..<Int.random(in: 1...3, using: &random)).map { _ in key() }
            case 14: return ["GET", "d"]
            case 15: return ["SUBSTR", key(), index(), index()]
            default:  // too few arguments
                return [pick(["SETRANGE", "SETBIT", "GETBIT", "HINCRBY", "BITPOS", "BITOP"]), key()]
            }
        }
    }

    /// BITFIELD and BITFIELD_RO: GET, SET and INCRBY of every width (i1..i64, u1..u63) at bit
    /// offsets and `#n` field offsets, under OVERFLOW WRAP, SAT and FAIL, with the types,
    /// offsets, values and subcommands Redis refuses, on new keys, strings and a list; GET and
    /// STRLEN read the strings back.
    @Test(arguments: conformations)
    func bitFieldsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["b", "b", "c", "s", "list", "missing"]) }
        func type() -> String {
            pick([
                "i1", "i3", "i8", "i16", "i32", "i63", "i64", "u1", "u2", "u8", "u16", "u31", "u63", "u64", "i65", "i0",
                "I8", "x8", "u08", "u"
            ])
        }
        // Writes stay near the start: an offset of 2^32 - 8 would make 512 MiB strings in both.
        func offset(reading: Bool) -> String {
            pick(
                ["0", "1", "5", "7", "8", "13", "64", "#0", "#1", "#3", "-1", "x", "#-1", "08"]
                    + (reading ? ["4294967288", "4294967296", "#99999999999"] : []))
        }
        func value() -> String {
            pick([
                "0", "1", "-1", "3", "7", "127", "128", "255", "-128", "-129", "100000", "9223372036854775807",
                "-9223372036854775808", "x", "-0"
            ])
        }
        func operation() -> [String] {
            switch Int.random(in: 0..<9, using: &random) {
            case 0, 1: return ["GET", type(), offset(reading: true)]
            case 2, 3: return ["SET", type(), offset(reading: false), value()]
            case 4, 5: return ["INCRBY", type(), offset(reading: false), value()]
            case 6: return ["OVERFLOW", pick(["WRAP", "SAT", "FAIL", "sat", "fail", "NONE"])]
            case 7: return [pick(["GET", "SET", "INCRBY", "OVERFLOW"])]  // too few arguments
            default: return [pick(["FOO", "GETBIT"]), type(), "0"]
            }
        }
        try Self.compare(
            rounds: 40, on: conformation, setup: [["SET", "s", "hello"], ["RPUSH", "list", "x"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0...4:
                return ["BITFIELD", key()] + (0..<Int.random(in: 0...4, using: &random)).flatMap { _ in operation() }
            case 5, 6:
                return ["BITFIELD_RO", key()]
                    + (0..<Int.random(in: 0...3, using: &random)).flatMap { _ in
                        Int.random(in: 0..<6, using: &random) == 0
                            ? operation() : ["GET", type(), offset(reading: true)]
                    }
            case 7: return ["GET", key()]
            case 8: return ["STRLEN", key()]
            default: return [pick(["BITFIELD", "BITFIELD_RO"])]
            }
        }
    }

    /// PFADD, PFCOUNT (one key, cached, and unions) and PFMERGE, with GET and STRLEN reading
    /// the HyperLogLog strings back byte for byte: sparse ones growing past 3000 bytes into
    /// dense ones, merges of both, strings that are no HyperLogLog, other types.
    @Test(arguments: conformations)
    func hyperLogLogsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["h1", "h1", "h2", "h3", "s", "list", "fake", "missing"]) }
        func elements() -> [String] {
            (0..<Int.random(in: 0...120, using: &random)).map { _ in "e\(Int.random(in: 0..<20_000, using: &random))" }
        }
        let setup = [["SET", "s", "text"], ["RPUSH", "list", "x"], ["SET", "fake", "HYLL"]]
        try Self.compare(rounds: 40, on: conformation, setup: setup, unordered: [:]) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0...3: return ["PFADD", key()] + elements()
            case 4, 5: return ["PFCOUNT"] + (0..<Int.random(in: 1...3, using: &random)).map { _ in key() }
            case 6: return ["PFMERGE", key()] + (0..<Int.random(in: 0...2, using: &random)).map { _ in key() }
            case 7: return [pick(["GET", "STRLEN"]), key()]
            // Rarely: a key lives for some thousands of elements, past the sparse form's 3000 bytes.
            case 8:
                return Int.random(in: 0..<8, using: &random) == 0
                    ? ["DEL", pick(["h1", "h2", "h3"])] : ["PFCOUNT", key()]
            default: return [pick(["PFADD", "PFCOUNT", "PFMERGE"])]
            }
        }
    }

    /// INCRBYFLOAT and HINCRBYFLOAT: sums of long doubles written as Redis writes them
    /// (`%.17Lf`, trailing zeros cut), from increments and stored values in every spelling
    /// strtold reads (and some it does not), overflow to infinity included.
    @Test(arguments: conformations)
    func floatIncrementsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func increment() -> String {
            pick([
                "0.1", "-0.1", "1.5", "3", "1e3", "-2.5e-3", "10.5", "1e20", "-1e20", "0.3", "7", "1.1", "-3.3",
                "5e-1", "1.", ".5", "+3", "3.0e2", "1e-20", "1e4000", "1.18e4932", "x", "inf", "-inf", "nan", "",
                "1e", "0x10", " 1", "1 ", "1e5000", "1e-5000", "123456789.123456789", "0.000000000000000001"
            ])
        }
        func key() -> String { pick(["a", "b", "h", "missing"]) }
        try Self.compare(
            rounds: 40, on: conformation, setup: [["HSET", "h", "f", "1.5", "t", "text"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<8, using: &random) {
            case 0, 1, 2: return ["INCRBYFLOAT", key(), increment()]
            case 3, 4: return ["HINCRBYFLOAT", pick(["h", "h", "a", "missing"]), pick(["f", "g", "t"]), increment()]
            case 5: return ["SET", key(), pick(["abc", "10.5", "1e4932", "-0", "5", "1.7976931348623157e308"])]
            case 6: return ["HGET", "h", pick(["f", "g"])]
            default: return ["GET", key()]
            }
        }
    }

    /// LCS with LEN, IDX, MINMATCHLEN and WITHMATCHLEN over strings of a small alphabet (many
    /// ties, so the walk back must break them as Redis does), missing keys and other types.
    @Test(arguments: conformations)
    func longestCommonSubsequencesAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func text() -> String {
            String((0..<Int.random(in: 0..<24, using: &random)).map { _ in "abcd".randomElement(using: &random)! })
        }
        func options() -> [String] {
            (0..<Int.random(in: 0...3, using: &random)).flatMap { _ in
                Int.random(in: 0..<4, using: &random) == 0
                    ? ["MINMATCHLEN", pick(["0", "2", "3", "-1", "x"])]
                    : [pick(["IDX", "LEN", "WITHMATCHLEN", "idx", "FOO"])]
            }
        }
        try Self.compare(
            rounds: 30, on: conformation, setup: [["RPUSH", "list", "x"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<4, using: &random) {
            case 0: return ["SET", pick(["a", "b"]), text()]
            default:
                return ["LCS", pick(["a", "a", "b", "missing", "list"]), pick(["a", "b", "b", "missing"])] + options()
            }
        }
    }

    /// SORT and SORT_RO: numbers (ties by bytes) and ALPHA, ASC and DESC, LIMIT, BY a key
    /// or a hash field (and BY without `*`, which keeps a list's or sorted set's order), GET
    /// (`#`, keys, fields, missing ones), STORE read back; weights that are not numbers.
    @Test(arguments: conformations)
    func sortAnswersAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        let setup = [
            ["RPUSH", "l", "3", "1", "2", "10", "1", "-4", "2.5"], ["SADD", "s", "3", "1", "2", "10"],
            ["ZADD", "z", "1", "10", "2", "3", "3", "1", "4", "2"], ["RPUSH", "words", "pear", "apple", "fig", "Apple"],
            ["MSET", "w_1", "c", "w_2", "a", "w_3", "b", "w_10", "d", "w_-4", "e", "w_2.5", "f"],
            // n_1 and n_2 tie as numbers (the elements then decide) but not as bytes: an ALPHA tie's
            // order is Redis's qsort's, unspecified. h_10 alone has no field: one missing value.
            ["MSET", "n_1", "5", "n_2", "5.0", "n_3", "-1", "n_10", "2.5", "n_-4", "0", "n_2.5", " 7"],
            ["HSET", "h_1", "f", "one"], ["HSET", "h_2", "f", "two"], ["HSET", "h_3", "f", "three"],
            ["HSET", "h_-4", "f", "minus"], ["HSET", "h_2.5", "f", "half"], ["SET", "str", "x"],
            ["MSET", "bad_1", "x1", "bad_2", "x2", "bad_3", "x3", "bad_10", "x10", "bad_-4", "x-4", "bad_2.5", "x2.5"]
        ]
        func options(_ key: String) -> [String] {
            var options: [String] = []
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                switch Int.random(in: 0..<6, using: &random) {
                case 0:
                    let patterns = key == "s" ? ["w_*", "n_*", "bad_*"] : ["w_*", "n_*", "h_*->f", "nosort", "bad_*"]
                    options += ["BY", pick(patterns)]
                case 1: options += ["LIMIT", pick(["0", "1", "2", "-1", "10", "x"]), pick(["2", "0", "-1", "3", "y"])]
                case 2: options += ["GET", pick(["#", "w_*", "h_*->f", "nokey", "missing_*", "h_*->g"])]
                case 3: options.append(pick(["ASC", "DESC", "desc"]))
                case 4: options.append(pick(["ALPHA", "alpha"]))
                default: options.append(pick(["FOO", "LIMIT"]))
                }
            }
            return options
        }
        try Self.compare(
            rounds: 30, on: conformation, setup: setup, unordered: [:]
        ) {
            switch Int.random(in: 0..<6, using: &random) {
            case 0, 1:
                let key = pick(["l", "l", "z", "words", "missing", "str"])
                return ["SORT", key] + options(key)
            case 2:
                let key = pick(["s", "l", "z"])
                return ["SORT", key] + options(key) + ["STORE", pick(["dst", "l2"])]
            case 3:
                let key = pick(["l", "z", "words"])
                return ["SORT_RO", key] + options(key) + (Bool.random(using: &random) ? [] : ["STORE", "dst"])
            case 4: return ["LRANGE", pick(["dst", "l2"]), "0", "-1"]
            default: return ["SORT", "s", "BY", pick(["n_*", "w_*"])] + (Bool.random(using: &random) ? ["ALPHA"] : [])
            }
        }
    }

    /// OBJECT ENCODING, REFCOUNT, FREQ and HELP, and its errors, over collections that grow
    /// past their compact encodings and shrink again (Redis keeps the larger one), strings
    /// written in place, float sums, copies and stored set results.
    @Test(arguments: conformations)
    func objectAnswersAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        let long = String(repeating: "x", count: 44)
        try Self.compare(
            rounds: 20, on: conformation, setup: [], unordered: [:]
        ) {
            switch Int.random(in: 0..<13, using: &random) {
            // Past the limits by count (an intset holds 512, a hash's listpack 512, a sorted set's 128).
            case 11:
                let size = pick(["100", "128", "129", "512", "513"])
                let count = Int(size)!
                let bulk = [
                    ["SADD", "n" + size] + (0..<count).map { "\($0)" },
                    ["HSET", "hn" + size] + (0..<count).flatMap { ["f\($0)", "v"] },
                    ["ZADD", "zn" + size] + (0..<count).flatMap { ["1", "m\($0)"] }
                ]
                return bulk[Int.random(in: 0..<bulk.count, using: &random)]
            case 12:
                let size = pick(["100", "128", "129", "512", "513"])
                let probes = [
                    ["OBJECT", "ENCODING", pick(["n", "hn", "zn"]) + size], ["SREM", "n" + size, "7"],
                    ["HDEL", "hn" + size, "f7"], ["ZREM", "zn" + size, "m7"], ["HSETNX", "h", "big2", long + long],
                    ["ZINCRBY", "z", "1", long + long + "z"]
                ]
                return probes[Int.random(in: 0..<probes.count, using: &random)]
            case 0:
                return [
                    "SET", "s",
                    pick(["100", "9999", "10000", "007", "-5", "+5", "1.5", long, long + "y", "12345678901234567890"])
                ]
            // Strings written in place (raw in Redis, whatever they hold), a float's sum, a copy.
            case 7:
                let writes = [
                    ["APPEND", "s", "1"], ["SETRANGE", "s", "0", "12"], ["SETBIT", "s", "2", "1"],
                    ["INCRBYFLOAT", "s", "1"],
                    ["INCR", "s"], ["COPY", "s", "s2", "REPLACE"], ["BITOP", "OR", "s2", "s"],
                    ["SUNIONSTORE", "u", "set"]
                ]
                return writes[Int.random(in: 0..<writes.count, using: &random)]
            // Collections that shrink: Redis keeps the larger encoding once chosen.
            case 8:
                return Bool.random(using: &random)
                    ? ["SREM", pick(["set", "u"]), pick(["1", "x", "04"])] : ["SMOVE", "set", "u", pick(["1", "x"])]
            case 9: return [pick(["HDEL", "ZREM"]), pick(["h", "z"]), pick(["big", "a", long + long])]
            case 10: return ["OBJECT", "ENCODING", pick(["s2", "u", "set", "h", "z", "s"])]
            case 1: return ["SADD", pick(["set", "set", "u"]), pick(["1", "2", "-3", "x", "04"])]
            // Values that only grow: a long one goes to a field or member of its own, never back.
            case 2:
                return Bool.random(using: &random)
                    ? ["HSET", "h", pick(["f", "g"]), "v"] : ["HSET", "h", "big", long + long]
            case 3: return ["ZADD", "z", "1", pick(["a", "b", long + long])]
            case 4: return ["RPUSH", "l", "v"]
            case 5:
                return [
                    "OBJECT", pick(["ENCODING", "encoding", "REFCOUNT", "FREQ", "foo"]),
                    pick(["s", "set", "h", "z", "l", "missing"])
                ]
            default:
                let forms = [["HELP"], ["ENCODING"], ["help", "x"], ["ENCODING", "s", "x"]]
                return ["OBJECT"] + forms[Int.random(in: 0..<forms.count, using: &random)]
            }
        }
    }

    /// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX, XX, GT and LT (and their conflicts),
    /// times that overflow, times already past; SET and GETEX with every expiry option; TTL
    /// read back in whole seconds, which both round alike, and EXPIRETIME of unix times.
    @Test(arguments: conformations)
    func expiryOptionsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["a", "b", "c", "missing"]) }
        func options() -> [String] {
            (0..<Int.random(in: 0...2, using: &random)).map { _ in pick(["NX", "XX", "GT", "LT", "gt", "XY"]) }
        }
        // Every time is new and far from the others: the two servers read their clocks
        // moments apart, so equal times could compare differently in each.
        var rising = 0
        var falling = 100_000_000
        func time() -> String {
            if Bool.random(using: &random) {
                rising += 1000
                return "\(rising)"
            }
            falling -= 1000
            return "\(falling)"
        }
        // Unix times (EXPIREAT, EXAT) years ahead, given alike to both: EXPIRETIME reads them back exactly.
        let now = Int(Date().timeIntervalSince1970)
        func unixTime() -> String { "\(now + 100_000_000 + Int.random(in: 0..<1000, using: &random) * 1000)" }
        func atKey() -> String { pick(["at1", "at2", "at3"]) }
        try Self.compare(
            rounds: 30, on: conformation, setup: [], unordered: [:]
        ) {
            switch Int.random(in: 0..<14, using: &random) {
            case 0, 1: return ["SET", key(), "v"]
            case 2, 3:
                let special = pick(["-1", "0", "x", "9223372036854775807", "-9223372036854775808"])
                return ["EXPIRE", key(), Int.random(in: 0..<4, using: &random) == 0 ? special : time()] + options()
            case 4: return ["PEXPIRE", key(), time() + "000", pick(["GT", "LT", "NX", "XX"])]
            case 5: return ["TTL", key()]
            case 6: return ["PERSIST", key()]
            // Absolute expiries go to keys of their own, the only ones EXPIRETIME reads: a relative
            // one is read back from each server's own clock, moments apart.
            case 7:
                let when = pick([unixTime(), unixTime(), "1", "-5", "x", "9223372036854775"])
                return Bool.random(using: &random)
                    ? ["EXPIREAT", atKey(), when] + options() : ["PEXPIREAT", atKey(), when + "000"] + options()
            case 8: return [pick(["EXPIRETIME", "PEXPIRETIME"]), atKey()]
            case 9:
                let option = pick(["EX", "PX", "EXAT", "PXAT", "PERSIST", "KEEPTTL", ""])
                guard ["EX", "PX"].contains(option) else {
                    let argument = option == "PXAT" ? unixTime() + "000" : unixTime()
                    return ["GETEX", atKey()]
                        + (option.hasSuffix("AT") ? [option, argument] : option.isEmpty ? [] : [option])
                }
                return ["GETEX", key(), option, pick([time(), "0", "-3", "x"])]
            case 10:
                let option = pick(["EX", "PX", "EXAT", "PXAT", "KEEPTTL"])
                guard ["EX", "PX"].contains(option) else {
                    let argument = option == "PXAT" ? unixTime() + "000" : unixTime()
                    let extra = Bool.random(using: &random) ? ["GET"] : []
                    return ["SET", atKey(), "w"] + (option == "KEEPTTL" ? [option] : [option, argument]) + extra
                }
                let extra: [String] = [[], ["EX", time()], ["GET"]][Int.random(in: 0..<3, using: &random)]
                return ["SET", key(), "w", option, time()] + extra
            case 11: return ["SET", atKey(), "v"]
            default: return ["EXISTS", key()]
            }
        }
    }

    /// ZADD with NX, XX, GT, LT, CH and INCR (and their conflicts), ZINCRBY, ZSCORE,
    /// ZMSCORE, ZREM, read back with ZCARD and ZPOPMIN: scores written as Redis writes them
    /// (integers as integers, others as %.17g, inf), from scores given in several spellings.
    @Test(arguments: conformations)
    func sortedSetOptionsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["z1", "z2", "missing", "str"]) }
        // In every spelling strtod reads: decimal (short, and longer than a double's 17
        // digits), hexadecimal, inf and infinity, past a double's range (refused), subnormal.
        func score() -> String {
            pick([
                "1", "2.5", "-3", "10", "0.125", "1.0", "+4", "1e2", "2.50", "-0.75", "1e20", "1e-5", "inf", "-inf",
                "x",
                "0.1", "3.14159", "-2.2e-3", "123456.789", "1.7976931348623157e308", "-0", "0x10", "0x1.8p1",
                "-Infinity", "1e400", "1e-400", "1e-310", "0.30000000000000004441", "9007199254740993",
                "1.7976931348623159e308", "0x", "1e", "nan"
            ])
        }
        func member() -> String { pick(["a", "b", "c", "d"]) }
        func pair() -> [String] { [score(), member()] }
        func flags() -> [String] {
            (0..<Int.random(in: 0...2, using: &random)).map { _ in
                pick(["NX", "XX", "GT", "LT", "CH", "ch", "gt", "INCR", "incr"])
            }
        }
        try Self.compare(
            rounds: Self.roundsPerType, on: conformation, clients: Self.clientsPerType,
            keys: ["z1", "z2", "missing", "str"], setup: [["SET", "str", "text"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<12, using: &random) {
            case 0, 1, 2: return ["ZADD", key()] + flags() + pair()
            case 3: return ["ZADD", key()] + flags() + pair() + pair()
            case 4: return ["ZADD", key()] + flags() + pair() + [pick(["1", "a"])]  // an odd count
            case 5: return ["ZCARD", key()]
            case 6: return ["ZPOPMIN", key(), pick(["1", "2"])]
            case 7: return ["ZINCRBY", key(), score(), member()]
            case 8: return ["ZSCORE", key(), member()]
            case 9: return ["ZMSCORE", key(), member(), member()]
            case 10: return ["ZREM", key(), member(), member()]
            default: return ["TYPE", key()]
            }
        }
    }

    /// Ranks and ranges of sorted sets: ZRANGE in every form (BYSCORE, BYLEX, REV, LIMIT,
    /// WITHSCORES and the options Redis refuses together), the older ZREVRANGE and
    /// Z[REV]RANGEBY{SCORE,LEX}, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY* and
    /// ZPOPMAX, over sets with ties of score (and one of a single score, for the lex forms).
    @Test(arguments: conformations)
    func sortedSetRangesAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["z1", "z1", "lex", "lex", "missing", "str"]) }
        func member() -> String { pick(["a", "b", "c", "d", "e", "f", "aa", "ab", "b1", ""]) }
        func rank() -> String { pick(["0", "1", "2", "-1", "-2", "-3", "5", "100", "-100", "x", "1.5"]) }
        func score() -> String {
            pick([
                "-inf", "+inf", "inf", "0", "1", "2", "(1", "(2", "1.5", "(0", "-1", "3", "(3", "x", "(", "", "nan",
                "1e400", "(-1e400", "0x1p1", " 1", "(infinity"
            ])
        }
        func lex() -> String { pick(["-", "+", "[a", "(a", "[b", "(b", "[aa", "[c", "(d", "[", "a", "[f", "(", "++"]) }
        func limit() -> [String] {
            Int.random(in: 0..<3, using: &random) == 0
                ? [] : ["LIMIT", pick(["0", "1", "2", "-1", "5", "x"]), pick(["1", "2", "-1", "0", "10", "y"])]
        }
        func options(_ choices: [String]) -> [String] {
            (0..<Int.random(in: 0...3, using: &random)).map { _ in pick(choices) }
        }
        // Lex ranges are meant for members of one score (with several, Redis's answer
        // depends on its skip list's random levels): they go to the key "lex", all of score 0.
        func lexKey() -> String { pick(["lex", "lex", "lex", "missing", "str"]) }
        func fill() -> [String] {
            let key = pick(["z1", "lex"])
            return ["ZADD", key]
                + (0..<Int.random(in: 1...4, using: &random)).flatMap { _ in
                    [key == "lex" ? "0" : pick(["0", "1", "1", "2", "3", "-1", "1.5"]), member()]
                }
        }
        let setup = [["SET", "str", "text"], ["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "aa", "0", "d"]]
        try Self.compare(
            rounds: 40, on: conformation, setup: setup, unordered: [:]
        ) {
            switch Int.random(in: 0..<18, using: &random) {
            case 0, 1: return fill()
            case 2:
                return ["ZRANGE", key(), rank(), rank()] + options(["REV", "WITHSCORES", "withscores", "BYSCORE"])
            case 3:
                return ["ZRANGE", key(), score(), score(), "BYSCORE"] + options(["REV", "WITHSCORES", "BYLEX"])
                    + limit()
            case 4: return ["ZRANGE", lexKey(), lex(), lex(), "BYLEX"] + options(["REV", "WITHSCORES"]) + limit()
            case 5: return ["ZRANGE", key(), rank(), rank()] + limit() + options(["REV", "BYSCORE", "FOO"])
            case 6: return ["ZREVRANGE", key(), rank(), rank()] + options(["WITHSCORES", "REV"])
            case 7:
                return [pick(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), key(), score(), score()]
                    + options(["WITHSCORES", "REV"]) + limit()
            case 8: return [pick(["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), lexKey(), lex(), lex()] + limit()
            case 9: return [pick(["ZRANK", "ZREVRANK"]), key(), member()]
            case 10: return ["ZCOUNT", key(), score(), score()]
            case 11: return ["ZLEXCOUNT", lexKey(), lex(), lex()]
            case 12:
                let kind = pick(["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"])
                let bounds =
                    kind == "ZREMRANGEBYRANK"
                    ? [rank(), rank()] : kind == "ZREMRANGEBYLEX" ? [lex(), lex()] : [score(), score()]
                return [kind, kind == "ZREMRANGEBYLEX" ? lexKey() : key()] + bounds
            case 13:
                return ["ZPOPMAX", key()]
                    + (Int.random(in: 0..<2, using: &random) == 0 ? [] : [pick(["1", "2", "0", "-1", "x"])])
            case 14: return [pick(["ZRANGE", "ZRANK", "ZCOUNT", "ZREMRANGEBYRANK"]), key()]  // too few arguments
            case 15:
                let destination = pick(["dst", "dst", "z1"])  // never "lex" or "str": lex ranges need one score
                switch Int.random(in: 0..<3, using: &random) {
                case 0: return ["ZRANGESTORE", destination, key(), rank(), rank()] + options(["REV", "WITHSCORES"])
                case 1:
                    return ["ZRANGESTORE", destination, key(), score(), score(), "BYSCORE"] + options(["REV"]) + limit()
                default:
                    return ["ZRANGESTORE", destination, lexKey(), lex(), lex(), "BYLEX"] + options(["REV"]) + limit()
                }
            case 16: return ["ZRANGE", "dst", "0", "-1", "WITHSCORES"]
            default: return ["ZRANGE", key(), "0", "-1", "WITHSCORES"]
            }
        }
    }

    /// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD, over sorted sets, plain sets
    /// (members score 1), missing keys and strings, with WEIGHTS, AGGREGATE, WITHSCORES,
    /// LIMIT and the key counts Redis refuses. (Scores stay finite: with infinities of both
    /// signs a sum depends on the order of inputs of equal size, which Redis leaves to qsort.)
    @Test(arguments: conformations)
    func sortedSetAlgebraAnswersAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["z1", "z2", "z3", "s1", "missing", "str"]) }
        func member() -> String { pick(["a", "b", "c", "d", "e"]) }
        func keys() -> (String, [String]) {
            let count = Int.random(in: 1...3, using: &random)
            let named = (0..<count).map { _ in key() }
            // Now and then a count that is not the number of keys given, or not a count.
            switch Int.random(in: 0..<12, using: &random) {
            case 0: return (pick(["0", "-1", "x"]), named)
            case 1: return ("\(count + 1)", named)
            default: return ("\(count)", named)
            }
        }
        func options(weights count: Int) -> [String] {
            (0..<Int.random(in: 0...2, using: &random)).flatMap { _ -> [String] in
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    return ["WEIGHTS"]
                        + (0..<count).map { _ in pick(["1", "2", "0.5", "-1", "0", "3", "x"]) }
                case 1: return ["AGGREGATE", pick(["SUM", "MIN", "MAX", "max", "AVG"])]
                case 2: return ["WITHSCORES"]
                default: return [pick(["LIMIT", "FOO"])]
                }
            }
        }
        let setup = [
            ["SET", "str", "text"], ["SADD", "s1", "a", "c", "e"],
            ["ZADD", "z1", "1", "a", "2", "b", "3", "c"], ["ZADD", "z2", "10", "b", "20", "c", "30", "d"]
        ]
        try Self.compare(
            rounds: 30, on: conformation, setup: setup, unordered: [:]
        ) {
            let (count, named) = keys()
            switch Int.random(in: 0..<10, using: &random) {
            case 0: return ["ZADD", pick(["z1", "z2", "z3"]), pick(["1", "2", "-3", "0.25", "7"]), member()]
            case 1: return ["SADD", "s1", member()]
            case 2, 3: return [pick(["ZUNION", "ZINTER", "ZDIFF"]), count] + named + options(weights: named.count)
            case 4, 5:
                return [pick(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), pick(["z3", "dest", "z1"]), count] + named
                    + options(weights: named.count)
            case 6:
                return ["ZINTERCARD", count] + named
                    + (Int.random(in: 0..<2, using: &random) == 0 ? [] : ["LIMIT", pick(["0", "1", "2", "-1", "x"])])
            case 7: return ["ZRANGE", pick(["z3", "dest"]), "0", "-1", "WITHSCORES"]
            case 8: return [pick(["ZUNION", "ZINTERSTORE", "ZINTERCARD"]), pick(["1", "2"])]  // too few arguments
            default: return ["ZADD", "z1", pick(["1", "2", "4"]), member()]
            }
        }
    }

    /// LMPOP and ZMPOP: the first non-empty key of several (missing keys skipped, a wrong
    /// type refused where it is met), LEFT/RIGHT and MIN/MAX, COUNT, and the key counts,
    /// directions and counts Redis refuses.
    @Test(arguments: conformations)
    func multiKeyPopsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["l1", "l2", "z1", "z2", "missing", "str"]) }
        func pop(_ name: String, _ directions: [String]) -> [String] {
            let named = (0..<Int.random(in: 1...3, using: &random)).map { _ in key() }
            let count =
                Int.random(in: 0..<10, using: &random) == 0 ? pick(["0", "-1", "x", "9"]) : "\(named.count)"
            let options =
                Int.random(in: 0..<2, using: &random) == 0
                ? [] : [pick(["COUNT", "count", "LIMIT"]), pick(["1", "2", "3", "0", "-2", "x"])]
            return [name, count] + named + [pick(directions)] + options
        }
        try Self.compare(
            rounds: 30, on: conformation, setup: [["SET", "str", "text"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<8, using: &random) {
            case 0: return ["RPUSH", pick(["l1", "l2"]), pick(["a", "b", "c"]), pick(["d", "e"])]
            case 1: return ["ZADD", pick(["z1", "z2"]), pick(["1", "2", "3", "1.5"]), pick(["a", "b", "c", "d"])]
            case 2, 3: return pop("LMPOP", ["LEFT", "RIGHT", "left", "MIN"])
            case 4, 5: return pop("ZMPOP", ["MIN", "MAX", "max", "LEFT"])
            case 6: return [pick(["LMPOP", "ZMPOP"]), "1", key()]  // no direction
            default: return [pick(["LRANGE", "ZRANGE"]), key(), "0", "-1"]
            }
        }
    }

    /// LPOS (RANK, COUNT, MAXLEN and their errors), LINSERT, LPUSHX, RPUSHX, LMOVE and
    /// RPOPLPUSH, lists moved onto themselves, onto missing keys and onto other types.
    @Test(arguments: conformations)
    func listMovesAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["l1", "l2", "l3", "missing", "str"]) }
        func element() -> String { pick(["a", "b", "c", "d"]) }
        func side() -> String { pick(["LEFT", "RIGHT", "left", "up"]) }
        func option() -> [String] {
            let name = pick(["RANK", "COUNT", "MAXLEN", "rank", "SIZE"])
            let value = pick(["1", "2", "-1", "-3", "0", "x", "5"])
            return Int.random(in: 0..<8, using: &random) == 0 ? [name] : [name, value]
        }
        try Self.compare(
            rounds: 30, on: conformation, setup: [["SET", "str", "text"]], unordered: [:]
        ) {
            switch Int.random(in: 0..<12, using: &random) {
            case 0, 1: return [pick(["LPUSH", "RPUSH"]), pick(["l1", "l2", "l3"]), element(), element(), element()]
            case 2: return [pick(["LPUSHX", "RPUSHX"]), key(), element()]
            case 3: return ["LINSERT", key(), pick(["BEFORE", "AFTER", "after", "MIDDLE"]), element(), element()]
            case 4, 5:
                return ["LPOS", key(), element()]
                    + (0..<Int.random(in: 0...3, using: &random)).flatMap { _ in option() }
            case 6: return ["LMOVE", key(), key(), side(), side()]
            case 7: return ["RPOPLPUSH", key(), key()]
            case 8: return ["LRANGE", key(), "0", "-1"]
            case 9: return [pick(["LINSERT", "LMOVE", "LPOS", "RPOPLPUSH"]), key()]  // too few arguments
            case 10: return ["SET", "str", "text"]
            default: return ["TYPE", key()]
            }
        }
    }

    /// Transactions on one connection: MULTI with commands Redis queues, refuses while
    /// queueing (unknown, arity) or fails at EXEC (wrong type), nested MULTI, WATCH inside
    /// MULTI, EXEC and DISCARD with and without MULTI, and WATCH of keys the connection then
    /// writes, reads or leaves alone before its EXEC.
    @Test(arguments: conformations)
    func transactionsAnswerAsRedisDoes(_ conformation: String) throws {
        var random = SystemRandomNumberGenerator()
        func pick(_ choices: [String]) -> String { choices[Int.random(in: 0..<choices.count, using: &random)] }
        func key() -> String { pick(["k", "j", "list", "str", "missing"]) }
        func command() -> [String] {
            switch Int.random(in: 0..<12, using: &random) {
            case 0, 1: return ["SET", key(), pick(["1", "x", "10"])]
            case 2: return ["INCR", key()]
            case 3: return ["GET", key()]
            case 4: return ["DEL", key()]
            case 5: return ["LPUSH", key(), "e"]
            case 6: return ["EXISTS", key()]
            case 7: return [pick(["FOO", "GET", "SET", "INCR"])]  // unknown, or too few arguments
            case 8: return ["ECHO", "hi"]  // not PING: a +PONG ends a round
            case 9:
                return [pick(["MULTI", "WATCH", "UNWATCH", "EXEC", "DISCARD"])]
                    + (Bool.random(using: &random) ? [] : [key()])
            case 10: return ["LRANGE", key(), "0", "-1"]
            default: return ["TYPE", key()]
            }
        }
        try Self.compare(
            rounds: 20, setup: [["SET", "str", "text"], ["RPUSH", "list", "a"]], unordered: [:], on: conformation
        ) {
            var commands: [[String]] = []
            while commands.count < 200 {
                switch Int.random(in: 0..<6, using: &random) {
                case 0: commands.append(command())
                case 1: commands.append(["WATCH"] + (0..<Int.random(in: 1...2, using: &random)).map { _ in key() })
                default:
                    commands.append(["MULTI"])
                    commands += (0..<Int.random(in: 0...4, using: &random)).map { _ in command() }
                    // A command above may have ended the MULTI; then this EXEC or DISCARD answers an error.
                    commands.append([pick(["EXEC", "EXEC", "DISCARD"])])
                    if commands.last?.first != "DISCARD" { commands.append(["DISCARD"]) }
                }
            }
            // A bare MULTI may have come last: the round's PING must not be queued.
            return commands + [["DISCARD"]]
        }
    }

    /// WATCH across connections: another client's change of a watched key makes EXEC
    /// answer a null array; a change of another key, a read, a DEL of a key that does not
    /// exist and UNWATCH leave it alone; FLUSHALL changes every key.
    @Test(arguments: conformations)
    func watchSeesOtherClientsAsRedisDoes(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        func session(_ port: UInt16) throws -> [RESPReply] {
            let a = try RawConnection(port: port)
            let b = try RawConnection(port: port)
            var replies: [RESPReply] = []
            for (connection, command) in [
                (a, ["WATCH", "k", "j"]), (b, ["SET", "k", "x"]), (a, ["MULTI"]), (a, ["SET", "k", "y"]), (a, ["EXEC"]),
                (a, ["GET", "k"]), (a, ["WATCH", "k"]), (b, ["GET", "k"]), (b, ["SET", "other", "1"]), (a, ["MULTI"]),
                (a, ["INCR", "n"]), (a, ["EXEC"]), (a, ["WATCH", "k"]), (b, ["DEL", "k"]), (a, ["UNWATCH"]),
                (a, ["MULTI"]), (a, ["GET", "k"]), (a, ["EXEC"]), (a, ["WATCH", "missing"]), (b, ["DEL", "missing"]),
                (a, ["MULTI"]), (a, ["EXEC"]), (b, ["SET", "w", "1"]), (a, ["WATCH", "w"]), (b, ["FLUSHALL"]),
                (a, ["MULTI"]), (a, ["ECHO", "hi"]), (a, ["EXEC"])
            ] {
                replies.append(try connection.request(command))
            }
            return replies
        }
        #expect(try session(server.port) == session(redis.port))
    }

    /// Blocking pops against redis-server: a client waits for a push of another (BLPOP,
    /// BRPOP, BLMOVE, BZPOPMIN, BLMPOP), a timeout ends in the null array about when it should,
    /// refused timeouts and wrong types answer at once, a transaction never blocks, a held
    /// client's next command waits for it, and the client that waited first is served first.
    @Test(arguments: conformations)
    func blockingPopsAnswerAsRedisDoes(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        func send(_ connection: RawConnection, _ command: String...) {
            connection.send(FlexOSTests.resp(command.map { Array($0.utf8) }))
        }
        /// The next `count` replies (they may come in one write or in several).
        func receive(_ connection: RawConnection, count: Int = 1) throws -> [RESPReply] {
            var replies = RESPReplies(
                connection.readBytes {
                    var replies = RESPReplies($0)
                    return ((try? replies.all())?.count ?? 0) >= count
                }.bytes)
            return try replies.all()
        }
        func session(_ port: UInt16) throws -> (replies: [[RESPReply]], timedOutAfter: Double) {
            let a = try RawConnection(port: port)
            let b = try RawConnection(port: port)
            let c = try RawConnection(port: port)
            var replies: [[RESPReply]] = []
            let started = Date()
            send(a, "BLPOP", "q", "0.3")
            replies.append(try receive(a))
            let timedOutAfter = Date().timeIntervalSince(started)
            for (waiter, pusher) in [
                (["BLPOP", "q1", "q2", "5"], ["RPUSH", "q2", "x", "y"]),
                (["BRPOP", "q2", "0"], ["RPUSH", "q3", "unrelated"]),
                (["BLMOVE", "src", "dst", "LEFT", "RIGHT", "2"], ["LPUSH", "src", "e"]),
                (["BZPOPMIN", "z", "1"], ["ZADD", "z", "2", "m2", "1", "m1"]),
                (["BLMPOP", "1", "1", "l", "RIGHT", "COUNT", "2"], ["RPUSH", "l", "1", "2", "3"])
            ] {
                a.send(FlexOSTests.resp(waiter.map { Array($0.utf8) }))
                usleep(100_000)
                b.send(FlexOSTests.resp(pusher.map { Array($0.utf8) }))
                replies.append(try receive(b))
                replies.append(try receive(a))
            }
            for command in [
                ["BZMPOP", "0.2", "1", "nz", "MAX"], ["BLPOP", "q", "-1"], ["BLPOP", "q", "abc"], ["SET", "str", "v"],
                ["BLPOP", "str", "1"], ["LRANGE", "dst", "0", "-1"], ["MULTI"], ["BLPOP", "none", "0"], ["EXEC"]
            ] {
                a.send(FlexOSTests.resp(command.map { Array($0.utf8) }))
                replies.append(try receive(a))
            }
            // The held client's PING waits for its BLPOP's answer.
            send(a, "BLPOP", "w", "0")
            send(a, "PING")
            usleep(100_000)
            send(b, "RPUSH", "w", "1")
            replies.append(try receive(b))
            replies.append(try receive(a, count: 2))
            // First come, first served.
            send(a, "BLPOP", "f", "0")
            usleep(100_000)
            send(c, "BLPOP", "f", "0")
            usleep(100_000)
            send(b, "RPUSH", "f", "one", "two")
            replies += [try receive(b), try receive(a), try receive(c)]
            return (replies, timedOutAfter)
        }
        let (got, expected) = (try session(server.port), try session(redis.port))
        #expect(got.replies.count == expected.replies.count)
        for (index, reply) in expected.replies.enumerated() where index < got.replies.count {
            #expect(got.replies[index] == reply, "exchange \(index): got \(got.replies[index]), redis-server \(reply)")
        }
        #expect(
            got.timedOutAfter >= 0.3 && got.timedOutAfter < 1.0, "BLPOP q 0.3 timed out after \(got.timedOutAfter) s")
    }

    /// The connection's commands, which resp answers: CLIENT GETNAME, SETNAME (refused
    /// names, arities, unknown subcommands), INFO, REPLY ON, OFF and SKIP (muted replies are
    /// never sent), CLIENT INFO's addresses (the client's and the server's ends, as both
    /// servers write them), AUTH without a configured password, HELLO 2 and 3 and their refusals,
    /// RESET inside MULTI and out of RESP3; in RESP3, HELLO's map, CLIENT INFO's verbatim
    /// text, the nulls of the store and of a blocking pop's timeout. (CLIENT ID and HELLO's
    /// id and version differ in value, not in form.)
    @Test(arguments: conformations)
    func connectionCommandsAnswerAsRedisDoes(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        let commands: [[String]] = [
            ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "worker-1"], ["CLIENT", "GETNAME"],
            ["CLIENT", "SETNAME", "bad name"], ["CLIENT", "SETNAME"], ["CLIENT", "FOO"], ["CLIENT"],
            ["AUTH", "secret"], ["AUTH", "user", "secret"], ["AUTH"], ["HELLO", "x"], ["HELLO", "2", "AUTH", "a", "b"],
            ["HELLO", "2", "FOO"], ["HELLO", "4"], ["HELLO", "1"], ["HELLO", "3", "FOO"],
            ["HELLO", "3", "AUTH", "a", "b"],
            ["CLIENT", "GETNAME"], ["MULTI"], ["SET", "a", "1"], ["RESET"], ["GET", "a"], ["CLIENT", "GETNAME"],
            ["CLIENT", "REPLY", "SKIP"], ["SET", "b", "2"], ["GET", "b"], ["CLIENT", "REPLY", "OFF"], ["SET", "c", "3"],
            ["GET", "c"], ["CLIENT", "REPLY", "ON"], ["GET", "c"], ["CLIENT", "REPLY", "FOO"], ["PING"]
        ]
        func session(_ port: UInt16) throws -> (
            replies: [RESPReply], hello: RESPReply, info: String, id: RESPReply, hello3: RESPReply, info3: RESPReply,
            resp3: [RESPReply], addresses: String
        ) {
            let connection = try RawConnection(port: port)
            let addresses = "addr=127.0.0.1:\(connection.localPort) laddr=127.0.0.1:\(port) "
            connection.send(commands.flatMap { FlexOSTests.resp($0.map { Array($0.utf8) }) })
            let pong = Array("+PONG\r\n".utf8)
            var replies = RESPReplies(connection.readBytes { $0.suffix(pong.count).elementsEqual(pong) }.bytes)
            func call(_ command: String...) throws -> RESPReply { try connection.request(command) }
            _ = try call("CLIENT", "SETNAME", "info-name")
            guard case .bulk(let info?) = try call("CLIENT", "INFO") else {
                throw TestFailure("CLIENT INFO: not a bulk reply")
            }
            return (
                try replies.all(), try call("HELLO", "2", "SETNAME", "hello-name"),
                String(decoding: info, as: UTF8.self), try call("CLIENT", "ID"), try call("HELLO", "3"),
                try call("CLIENT", "INFO"),
                [
                    try call("GET", "nope"), try call("BLPOP", "nope", "0.05"), try call("CLIENT", "GETNAME"),
                    try call("RESET"), try call("GET", "nope"), try call("CLIENT", "GETNAME")
                ], addresses
            )
        }
        let (got, expected) = (try session(server.port), try session(redis.port))
        #expect(got.replies == expected.replies)
        #expect(got.resp3 == expected.resp3)
        #expect(expected.resp3.first == .null, "redis-server's GET in RESP3: \(expected.resp3): the test is wrong")
        #expect(got.hello3.withoutServerIdentity == expected.hello3.withoutServerIdentity, "HELLO 3: got \(got.hello3)")
        guard case .verbatim("txt", let info3) = got.info3 else {
            Issue.record("CLIENT INFO in RESP3: got \(got.info3), redis-server \(expected.info3)")
            return
        }
        #expect(String(decoding: info3, as: UTF8.self).contains(" resp=3"), "CLIENT INFO in RESP3")
        // Unlike Redis, a name is at most 1 KiB: names live in resp's heap, which every client shares.
        let naming = try RawConnection(port: server.port)
        naming.send(
            FlexOSTests.resp([Array("CLIENT".utf8), Array("SETNAME".utf8), [UInt8](repeating: 0x61, count: 1025)]))
        #expect(
            naming.read { $0.hasSuffix("\r\n") }.text
                == "-ERR Client names are limited to 1024 bytes by this server\r\n")
        // HELLO 2: Redis's map as a flat array, the same keys and the same values but the version and the id.
        guard case .array(let gotHello?) = got.hello, case .array(let expectedHello?) = expected.hello else {
            Issue.record("HELLO 2: got \(got.hello), redis-server \(expected.hello)")
            return
        }
        #expect(gotHello.count == 14 && expectedHello.count == 14)
        for index in stride(from: 0, to: min(gotHello.count, expectedHello.count), by: 2) where index != 2 && index != 6
        {
            #expect(
                gotHello[index] == expectedHello[index] && gotHello[index + 1] == expectedHello[index + 1],
                "HELLO field \(index / 2)")
        }
        guard case .integer(let id) = got.id else {
            Issue.record("CLIENT ID: \(got.id)")
            return
        }
        #expect(gotHello[7] == .integer(id), "HELLO's id is CLIENT ID's")
        // CLIENT INFO: Redis's fields that resp knows, with the same values where they do not depend on the server.
        for field in ["id=\(id) ", got.addresses, "name=info-name ", "flags=N ", "db=0 ", "multi=-1 ", "resp=2"] {
            #expect(got.info.contains(field), "CLIENT INFO \(got.info) lacks \(field)")
        }
        for field in [expected.addresses, "name=info-name ", "flags=N ", "db=0 ", "multi=-1 ", "resp=2"] {
            #expect(
                expected.info.contains(field),
                "redis-server's CLIENT INFO \(expected.info) lacks \(field): the test is wrong")
        }
    }

    /// SCAN, SSCAN, HSCAN and ZSCAN: a full iteration (from cursor 0 until the server answers
    /// 0 again) visits the same keys, members, fields and scores as redis-server's, with MATCH,
    /// COUNT and TYPE; collections large enough that Redis iterates them in several calls
    /// too; refused cursors and options, absent keys and wrong types answer alike.
    @Test(arguments: conformations)
    func scansVisitWhatRedisVisits(_ conformation: String) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        func call(_ connection: RawConnection, _ command: [String]) throws -> RESPReply {
            try connection.request(command)
        }
        /// Everything a full iteration of `command` (the cursor at `cursorIndex`) visits.
        func iterate(_ connection: RawConnection, _ command: [String], cursorIndex: Int) throws -> Set<String> {
            var visited = Set<String>()
            var cursor = "0"
            var calls = 0
            repeat {
                var step = command
                step[cursorIndex] = cursor
                guard case .array(let parts?) = try call(connection, step), parts.count == 2,
                    case .bulk(let next?) = parts[0], case .array(let elements?) = parts[1]
                else { throw TestFailure("\(step): not a scan reply") }
                let texts = elements.map { element -> String in
                    if case .bulk(let bytes?) = element { return String(decoding: bytes, as: UTF8.self) }
                    return "\(element)"
                }
                // HSCAN and ZSCAN answer pairs: keep each pair together.
                let pairs = command[0] == "HSCAN" || command[0] == "ZSCAN"
                visited.formUnion(
                    pairs ? stride(from: 0, to: texts.count - 1, by: 2).map { texts[$0] + "=" + texts[$0 + 1] } : texts)
                cursor = String(decoding: next, as: UTF8.self)
                calls += 1
            } while cursor != "0" && calls < 10_000
            return visited
        }
        let iterations: [[String]] = [
            ["SCAN", "0"], ["SCAN", "0", "COUNT", "3"], ["SCAN", "0", "MATCH", "k:1*"], ["SCAN", "0", "TYPE", "zset"],
            ["SCAN", "0", "MATCH", "*big*", "COUNT", "50", "TYPE", "set"], ["SSCAN", "bigset", "0"],
            ["SSCAN", "bigset", "0", "MATCH", "m1?", "COUNT", "7"], ["SSCAN", "s:1", "0"], ["HSCAN", "bighash", "0"],
            ["HSCAN", "bighash", "0", "MATCH", "f2*"], ["ZSCAN", "bigz", "0"], ["ZSCAN", "bigz", "0", "MATCH", "m?"]
        ]
        let refusals: [[String]] = [
            ["SCAN", "x"], ["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT", "x"], ["SCAN", "0", "MATCH"],
            ["SCAN", "0", "FOO", "1"], ["SSCAN", "missing", "0", "FOO"], ["SSCAN", "k:1", "0"], ["SSCAN", "s:1", "x"],
            ["SSCAN", "s:1", "0", "TYPE", "set"], ["HSCAN", "bigz", "0"], ["ZSCAN", "bighash", "0", "COUNT", "-1"],
            ["SCAN"], ["SSCAN", "s:1"]
        ]
        func session(_ port: UInt16) throws -> (visited: [Set<String>], refused: [RESPReply]) {
            let connection = try RawConnection(port: port)
            for index in 0..<60 {
                _ = try call(connection, ["SET", "k:\(index)", "v"])
                _ = try call(connection, ["RPUSH", "l:\(index)", "a"])
                _ = try call(connection, ["SADD", "s:\(index)", "a", "b", "\(index)"])
                _ = try call(connection, ["ZADD", "z:\(index)", "1", "a"])
            }
            _ = try call(connection, ["SADD", "bigset"] + (0..<300).map { "m\($0)" })
            _ = try call(connection, ["HSET", "bighash"] + (0..<300).flatMap { ["f\($0)", "v\($0)"] })
            _ = try call(connection, ["ZADD", "bigz"] + (0..<300).flatMap { ["\(Double($0) / 4)", "m\($0)"] })
            return (
                try iterations.map { try iterate(connection, $0, cursorIndex: $0[0] == "SCAN" ? 1 : 2) },
                try refusals.map { try call(connection, $0) }
            )
        }
        let (got, expected) = (try session(server.port), try session(redis.port))
        for (index, command) in iterations.enumerated() {
            #expect(!expected.visited[index].isEmpty, "\(command) visits nothing in redis-server: the test is wrong")
            #expect(
                got.visited[index] == expected.visited[index],
                "\(command): \(got.visited[index].count) visited, redis-server \(expected.visited[index].count)")
        }
        for (index, command) in refusals.enumerated() {
            #expect(
                got.refused[index] == expected.refused[index],
                "\(command): got \(got.refused[index]), redis-server \(expected.refused[index])")
        }
    }

    /// Sends `setup`, then `rounds` pipelines of 200 commands from `next` and a PING, to
    /// the appliance and to redis-server, and compares reply by reply. `unordered`: the
    /// commands whose array replies are compared as multisets (of pairs, when true).
    static func compare(
        rounds: Int, on conformation: String, clients: Int = 1, keys: Set<String> = [], setup: [[String]],
        unordered: [String: Bool], next: () -> [String]
    ) throws {
        try compare(rounds: rounds, setup: setup, unordered: unordered, on: conformation, clients: clients, keys: keys)
        {
            (0..<200).map { _ in next() }
        }
    }

    /// As above, with each round's commands from `round` (a round must leave no MULTI open:
    /// its closing PING would be queued). With several `clients`, each has a connection to
    /// each server and a stream of its own, sent together and read back client by client;
    /// each client's copy of the `keys` its commands name is its own ("c1:h1"), so the
    /// servers' different interleavings cannot change a reply. Each client starts each round
    /// with HELLO 2 or HELLO 3, at random: every family is compared in RESP2 and in RESP3.
    static func compare(
        rounds: Int, setup: [[String]], unordered: [String: Bool],
        on conformation: String = "Configs/kvstore-fcalls.yaml", clients: Int = 1, keys: Set<String> = [],
        round makeRound: () -> [[String]]
    ) throws {
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let redis = try RedisServer()
        defer { redis.stop() }
        let appliances = try (0..<clients).map { _ in try RawConnection(port: server.port) }
        let references = try (0..<clients).map { _ in try RawConnection(port: redis.port) }
        var random = SystemRandomNumberGenerator()
        for round in 0..<(rounds * scale) {
            let streams = (0..<clients).map { client in
                let hello = ["HELLO", Bool.random(using: &random) ? "3" : "2"]
                return ([hello] + (round == 0 ? setup : []) + makeRound() + [["PING"]]).map { command in
                    clients == 1
                        ? command
                        : [command[0]] + command.dropFirst().map { keys.contains($0) ? "c\(client):\($0)" : $0 }
                }
            }
            for (client, commands) in streams.enumerated() {
                let bytes = commands.flatMap { FlexOSTests.resp($0.map { Array($0.utf8) }) }
                appliances[client].send(bytes)
                references[client].send(bytes)
            }
            for (client, commands) in streams.enumerated() {
                let same = try compareReplies(
                    to: commands, got: appliances[client], expected: references[client], unordered: unordered,
                    at: "round \(round), client \(client)")
                if !same { return }
            }
        }
    }

    /// Reads one stream's replies (up to its closing PONG) from both servers and compares
    /// them reply by reply; false at the first difference, which it records.
    private static func compareReplies(
        to commands: [[String]], got appliance: RawConnection, expected reference: RawConnection,
        unordered: [String: Bool], at place: String
    ) throws -> Bool {
        let pong = Array("+PONG\r\n".utf8)
        var expectedReplies = RESPReplies(reference.readBytes { $0.suffix(pong.count).elementsEqual(pong) }.bytes)
        var gotReplies = RESPReplies(appliance.readBytes { $0.suffix(pong.count).elementsEqual(pong) }.bytes)
        let expected = try expectedReplies.all()
        let got = try gotReplies.all()
        try #require(
            got.count == expected.count,
            "\(place): \(got.count) replies, redis-server gave \(expected.count)" as Comment)
        for (index, command) in commands.enumerated() {
            let same =
                command[0] == "HELLO"
                ? expected[index].withoutServerIdentity == got[index].withoutServerIdentity
                : unordered[command[0].uppercased()].map {
                    expected[index].sorted(pairs: $0) == got[index].sorted(pairs: $0)
                }
                    ?? (expected[index] == got[index])
            let before = commands[max(0, index - 12)..<index].map { $0.joined(separator: " ") }.joined(separator: "; ")
            #expect(
                same,
                "\(place): \(command.joined(separator: " ")): got \(got[index]), redis-server \(expected[index]) (after: \(before))"
                    as Comment)
            if !same { return false }
        }
        return true
    }
}

/// One RESP2 or RESP3 reply, as read back for comparison.
indirect enum RESPReply: Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8]?)
    case array([RESPReply]?)
    // RESP3's own types (HELLO 3).
    case null
    case double(String)
    case boolean(Bool)
    case verbatim(format: String, [UInt8])
    /// A map's keys and values, flat, in the order sent.
    case map([RESPReply])
    case set([RESPReply])

    /// An array's, map's or set's elements in a fixed order; with `pairs` (HGETALL's flat
    /// field-value list in RESP2) each pair stays together, as a map's always do.
    func sorted(pairs: Bool) -> RESPReply {
        switch self {
        case .array(let elements?): .array(Self.sorted(elements, pairs: pairs))
        case .map(let elements): .map(Self.sorted(elements, pairs: true))
        case .set(let elements): .set(Self.sorted(elements, pairs: false))
        default: self
        }
    }

    private static func sorted(_ elements: [RESPReply], pairs: Bool) -> [RESPReply] {
        let groups =
            pairs && elements.count % 2 == 0
            ? stride(from: 0, to: elements.count, by: 2).map { [elements[$0], elements[$0 + 1]] }
            : elements.map { [$0] }
        return groups.sorted { $0.description < $1.description }.flatMap { $0 }
    }

    /// HELLO's map (or RESP2 array) with the values that differ between servers (version, id) blanked.
    var withoutServerIdentity: RESPReply {
        func blank(_ elements: [RESPReply]) -> [RESPReply] {
            var copy = elements
            for index in stride(from: 0, to: copy.count - 1, by: 2)
            where copy[index] == .bulk(Array("version".utf8)) || copy[index] == .bulk(Array("id".utf8)) {
                copy[index + 1] = .simple("(differs)")
            }
            return copy
        }
        switch self {
        case .map(let elements): return .map(blank(elements))
        case .array(let elements?): return .array(blank(elements))
        default: return self
        }
    }

    var description: String {
        switch self {
        case .simple(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let bytes?): "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .bulk(nil), .array(nil): "(nil)"
        case .array(let elements?): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .null: "_"
        case .double(let text): "(double) \(text)"
        case .boolean(let value): value ? "#t" : "#f"
        case .verbatim(let format, let bytes): "=\(format):\(String(decoding: bytes, as: UTF8.self))"
        case .map(let elements): "%{" + elements.map(\.description).joined(separator: ", ") + "}"
        case .set(let elements): "~{" + elements.map(\.description).joined(separator: ", ") + "}"
        }
    }
}

extension RawConnection {
    /// Sends `command` and reads its one reply.
    func request(_ command: [String]) throws -> RESPReply {
        send(FlexOSTests.resp(command.map { Array($0.utf8) }))
        var replies = RESPReplies(readBytes { RESPReplies($0).isComplete }.bytes)
        return try replies.all()[0]
    }
}

/// Splits a byte stream of RESP2 or RESP3 replies.
struct RESPReplies {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func all() throws -> [RESPReply] {
        var replies: [RESPReply] = []
        while position < bytes.count { replies.append(try next()) }
        return replies
    }

    /// Whether the bytes end with a whole reply (none cut short).
    var isComplete: Bool {
        var copy = self
        return !bytes.isEmpty && (try? copy.all()) != nil
    }

    mutating func next() throws -> RESPReply {
        guard position < bytes.count else { throw TestFailure("the stream ends in the middle of a reply") }
        let kind = bytes[position]
        position += 1
        let line = try self.line()
        switch kind {
        case UInt8(ascii: "+"): return .simple(line)
        case UInt8(ascii: "-"): return .error(line)
        case UInt8(ascii: ":"): return .integer(try number(line))
        case UInt8(ascii: "$"):
            let length = try number(line)
            guard length >= 0 else { return .bulk(nil) }
            return .bulk(try blob(length))
        case UInt8(ascii: "*"):
            let count = try number(line)
            guard count >= 0 else { return .array(nil) }
            return .array(try elements(count))
        case UInt8(ascii: "_"):
            guard line.isEmpty else { throw TestFailure("a RESP3 null with text: \(line)") }
            return .null
        case UInt8(ascii: ","): return .double(line)
        case UInt8(ascii: "#"):
            guard line == "t" || line == "f" else { throw TestFailure("not a RESP3 boolean: \(line)") }
            return .boolean(line == "t")
        case UInt8(ascii: "="):
            let text = try blob(try number(line))
            guard text.count >= 4, text[3] == UInt8(ascii: ":") else {
                throw TestFailure("a verbatim string without its format")
            }
            return .verbatim(format: String(decoding: text[0..<3], as: UTF8.self), Array(text[4...]))
        case UInt8(ascii: "%"): return .map(try elements(2 * (try number(line))))
        case UInt8(ascii: "~"): return .set(try elements(try number(line)))
        default: throw TestFailure("not a RESP reply at byte \(position - 1): \(kind)")
        }
    }

    private mutating func blob(_ length: Int) throws -> [UInt8] {
        guard length >= 0, position + length + 2 <= bytes.count else {
            throw TestFailure("a bulk reply runs past the stream")
        }
        defer { position += length + 2 }
        return Array(bytes[position..<(position + length)])
    }

    private mutating func elements(_ count: Int) throws -> [RESPReply] {
        guard count >= 0 else { throw TestFailure("a negative element count") }
        return try (0..<count).map { _ in try next() }
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: UInt8(ascii: "\r")), end + 1 < bytes.count else {
            throw TestFailure("a reply line has no end")
        }
        defer { position = end + 2 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private func number(_ text: String) throws -> Int {
        guard let value = Int(text) else { throw TestFailure("not a number in a reply: \(text)") }
        return value
    }
}
