import ArgumentParser
import Foundation

/// `flexos-bench default`: redis-benchmark's default run (every test it makes without `-t`)
/// against redis-server and the kvstore appliance, alternated round by round in one
/// invocation, with the ratio to redis-server per test.
struct DefaultRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default",
        abstract:
            "redis-benchmark's default run (every test) against redis-server and kvstore image sets: requests per second per test, medians, and the ratio to redis-server.",
        discussion:
            "Needs release builds of flexosd and the image sets under Guest/build (scripts/bench builds them), redis-benchmark and redis-server. The servers take turns within each round; each cell is the median over the rounds."
    )

    @Option(help: "The image sets to measure (folders under Guest/build).")
    var sets = ["kvstore-fcalls", "kvstore-parser-vmept2"]

    @Option(help: "Rounds (the median is reported).")
    var runs = 3

    @Option(help: "Requests per test (redis-benchmark -n).")
    var requests = 20_000

    @Option(help: "Concurrent clients (redis-benchmark -c).")
    var clients = 50

    func run() throws {
        let servers: [(name: String, command: (Int) -> [String])] =
            [("redis-server", RedisServers.redisServer(port:))]
            + sets.map { set in
                (
                    set,
                    { port in
                        [".build/release/flexosd", "launch", "--listen", "127.0.0.1:\(port)", "Guest/build/\(set)"]
                    }
                )
            }
        var samples = [[String: [Double]]](repeating: [:], count: servers.count)
        var order: [String] = []
        for round in 1...runs {
            for (index, server) in servers.enumerated() {
                let figures = try measure(server.command)
                for (test, value) in figures { samples[index][test, default: []].append(value) }
                if order.isEmpty { order = figures.keys.sorted() }
                FileHandle.standardError.write(Data("round \(round) \(server.name): \(figures.count) tests\n".utf8))
            }
        }
        let medians = samples.map { $0.mapValues(median) }
        print(
            "| test | " + servers.map { "\($0.name) req/s" }.joined(separator: " | ") + " | "
                + servers.dropFirst().map { "\($0.name) / redis-server" }.joined(separator: " | ") + " |")
        print("| --- |" + String(repeating: " --- |", count: 2 * servers.count - 1))
        for test in testOrder(medians[0], fallback: order) {
            let values = medians.map { $0[test] }
            let cells = values.map { $0.map { String(format: "%.0f", $0) } ?? "missing" }
            let ratios = values.dropFirst().map { value -> String in
                guard let value, let base = values[0], base > 0 else { return "-" }
                return String(format: "%.2fx", value / base)
            }
            print("| \(test) | " + (cells + ratios).joined(separator: " | ") + " |")
        }
    }

    /// redis-benchmark's own order of its tests, as redis-server's run printed them.
    private func testOrder(_ baseline: [String: Double], fallback: [String]) -> [String] {
        let known = [
            "PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET",
            "SPOP", "ZADD", "ZPOPMIN", "LPUSH (needed to benchmark LRANGE)", "LRANGE_100 (first 100 elements)",
            "LRANGE_300 (first 300 elements)", "LRANGE_500 (first 500 elements)", "LRANGE_600 (first 600 elements)",
            "MSET (10 keys)"
        ]
        return known.filter { baseline[$0] != nil } + fallback.filter { !known.contains($0) }
    }

    /// One server's requests per second by test: started, the default run, stopped.
    private func measure(_ command: (Int) -> [String]) throws -> [String: Double] {
        let port = try RedisServers.freePort()
        let server = try RedisServers.start(command(port))
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        try RedisServers.waitForPing(port: port, server: server)
        return RedisServers.figures(
            in: try RedisServers.capture([
                "/usr/bin/redis-benchmark", "-p", "\(port)", "-q", "-n", "\(requests)", "-c", "\(clients)"
            ]))
    }
}
