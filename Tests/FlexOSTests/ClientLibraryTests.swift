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
}
