import Foundation
import Testing

/// A real client library used as an application uses it: redis-py (Debian's python3-redis,
/// which scripts/setup.sh installs) runs Tests/Clients/redis_py_app.py against redis-server and
/// against the appliance in the same run, and the two must print the same lines.
@Suite(.tags(.boot, .redis), .beyondTheUnitTier) struct ClientLibraryTests {
    static let python = "/usr/bin/python3"
    static let application = "Tests/Clients/redis_py_app.py"

    /// What the application prints against the server on `port`.
    static func runApplication(port: UInt16) throws -> Executables.Result {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("\(python) is missing: scripts/setup.sh installs python3-redis")
        }
        return try Executables.runProgram(python, [application, "\(port)"])
    }

    @Test(arguments: ["Configs/kvstore-fcalls.yaml", "Configs/kvstore-parser-vmept2.yaml"])
    func redisPyAnApplicationSeesWhatRedisServerGives(_ conformation: String) throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let expected = try ClientLibraryTests.runApplication(port: redis.port)
        try #require(
            expected.status == 0, "redis-py against redis-server failed: \(expected.errors)" as Comment)
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        let got = try ClientLibraryTests.runApplication(port: server.port)
        #expect(got.status == 0, "\(got.errors)")
        let expectedLines = expected.output.split(separator: "\n")
        let gotLines = got.output.split(separator: "\n")
        #expect(expectedLines.count > 50, "\(expected.output)")
        for (index, line) in expectedLines.enumerated() {
            let other = index < gotLines.count ? gotLines[index] : "(nothing)"
            #expect(other == line, "line \(index + 1): the appliance gave \(other), redis-server \(line)")
            if other != line { break }
        }
        #expect(gotLines.count == expectedLines.count)
    }

    /// redis-cli in RESP3 (`-3`, its typed output kept with `--no-raw`): maps, sets, doubles,
    /// pairs, nulls and verbatim text read back as redis-server's do. (Debian's redis-py
    /// predates RESP3, so redis-cli is the RESP3 client here.)
    @Test(arguments: ["Configs/kvstore-fcalls.yaml", "Configs/kvstore-parser-vmept2.yaml"])
    func redisCLIInRESP3SeesWhatRedisServerGives(_ conformation: String) throws {
        let commands = [
            "FLUSHALL", "HSET h f v", "ZADD z 1 a 2.5 b 0.1 c", "SADD s m", "SET k1 ohmytext", "SET k2 mynewtext",
            "HGETALL h", "SMEMBERS s", "ZRANGE z 0 -1 WITHSCORES", "ZSCORE z b", "ZMSCORE z a nope", "ZINCRBY z 1 a",
            "ZPOPMIN z", "ZPOPMAX z 1", "ZRANDMEMBER z 1 WITHSCORES", "HRANDFIELD h 1 WITHVALUES", "GET nope",
            "LPOP nope 2", "BLPOP nope 0.01", "CONFIG GET nope", "LCS k1 k2 IDX MINMATCHLEN 4 WITHMATCHLEN", "MULTI",
            "ZSCORE z a", "HGETALL h", "SPOP s 1", "EXEC", "TYPE h", "INFO keyspace"
        ]
        let input = Data(commands.joined(separator: "\n").utf8)
        func session(_ port: UInt16) throws -> String {
            String(
                decoding: try Redis.run("redis-cli", ["-3", "--no-raw", "-p", "\(port)"], input: input), as: UTF8.self)
        }
        let redis = try RedisServer()
        defer { redis.stop() }
        let expected = try session(redis.port)
        #expect(
            expected.contains("1# \"f\" => \"v\"") && expected.contains("(double) 2.5"),
            "the test is wrong: \(expected)")
        let server = try KeyValueServer(conformation)
        defer { server.stop() }
        #expect(try session(server.port) == expected)
    }
}
