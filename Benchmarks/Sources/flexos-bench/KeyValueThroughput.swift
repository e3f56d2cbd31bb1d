import ArgumentParser
import Foundation

/// `flexos-bench kvstore`: redis-benchmark against the kvstore appliance in each
/// conformation, and against a real redis-server in the same run (the baseline).
struct KeyValueThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvstore",
        abstract:
            "Requests per second of the kvstore appliance per conformation, next to redis-server in the same run.",
        discussion:
            "Needs release builds of flexosd, the image sets under Guest/build (scripts/bench builds them), redis-benchmark and redis-server."
    )

    @Option(help: "The image sets to measure (folders under Guest/build).")
    var sets = [
        "kvstore-fcalls", "kvstore-fcalls-hardened", "kvstore-net-vmept2", "kvstore-parser-vmept2",
        "kvstore-parser-vmept2-hardened", "kvstore-vmept3", "kvstore-vmept3-hardened"
    ]

    @Option(help: "Requests per redis-benchmark test.")
    var requests = 20_000

    @Option(help: "Concurrent clients.")
    var clients = 50

    @Option(help: "Commands each client pipelines (redis-benchmark -P); 1 is no pipelining.")
    var pipeline = [1, 16]

    @Option(help: "redis-benchmark tests.")
    var tests = "set,get"

    func run() throws {
        var rows: [(String, [String: Double])] = []
        for depth in pipeline {
            rows.append(
                (
                    "redis-server (baseline), -P \(depth)",
                    try measure(depth) { port in
                        try RedisServers.start(RedisServers.redisServer(port: port))
                    }
                ))
            for set in sets {
                rows.append(
                    (
                        "\(set), -P \(depth)",
                        try measure(depth) { port in
                            try RedisServers.start([
                                ".build/release/flexosd", "launch", "--listen", "127.0.0.1:\(port)",
                                "Guest/build/\(set)"
                            ])
                        }
                    ))
            }
        }
        let names = tests.split(separator: ",").map { $0.uppercased() }
        print("| image set | " + names.map { "\($0) req/s | ratio to redis-server" }.joined(separator: " | ") + " |")
        print("| --- |" + String(repeating: " --- | --- |", count: names.count))
        var baseline: [String: Double] = [:]
        for (name, figures) in rows {
            if name.hasPrefix("redis-server") { baseline = figures }
            let cells = names.map { test -> String in
                let value = figures[test] ?? 0
                return String(format: "%.0f | %.2fx", value, value / max(baseline[test] ?? 1, 1))
            }
            print("| \(name) | " + cells.joined(separator: " | ") + " |")
        }
    }

    /// Starts a server with `launch`, waits until it answers PING, runs redis-benchmark.
    private func measure(_ depth: Int, launch: (Int) throws -> Process) throws -> [String: Double] {
        let port = try RedisServers.freePort()
        let server = try launch(port)
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        try RedisServers.waitForPing(port: port, server: server)
        let figures = try RedisServers.benchmark(
            port: port, requests: requests, clients: clients, pipeline: depth, tests: tests)
        FileHandle.standardError.write(Data("\(launchName(server)) -P \(depth): \(figures)\n".utf8))
        return figures
    }

    private func launchName(_ process: Process) -> String { process.arguments?.last ?? "?" }
}
