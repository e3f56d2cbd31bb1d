import ArgumentParser
import Foundation

/// `flexos-bench notify`: what isolation costs the key-value appliance in CPU and
/// throughput, sleeping in the kernel and sleeping in flexosd (the wait
/// hypercall it replaces), next to redis-server, alternated run by run in one invocation.
struct NotificationCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract:
            "Requests per second, CPU time per request (every thread of the server process, guest time included) and exits to flexosd per request of the kvstore appliance sleeping in the kernel and in flexosd (--no-kernel-sleep), next to redis-server.",
        discussion:
            "Needs release builds of flexosd, Guest/build/kvstore-{fcalls,parser-vmept2,vmept3} (scripts/bench builds them), redis-benchmark and redis-server. Each row is the median of --runs runs; the variants take turns within each round."
    )

    @Option(help: "Runs per variant and pipeline depth (the median is reported).")
    var runs = 5

    @Option(help: "GET requests per run at -P 1; -P 16 runs get four times as many.")
    var requests = 50_000

    @Option(help: "Concurrent clients.")
    var clients = 50

    @Option(help: "Pipeline depths (redis-benchmark -P).")
    var pipeline = [1, 16]

    /// One server configuration: how to start it on a port.
    struct Variant {
        let name: String
        let command: (Int) -> [String]
        var isFlexOS: Bool { name != "redis-server" }
    }

    /// One run's figures.
    struct Sample {
        var requestsPerSecond: Double
        var cpuMicrosecondsPerRequest: Double
        /// nil for redis-server.
        var exitsPerRequest: Double?
    }

    var variants: [Variant] {
        func flexosd(_ set: String, _ extra: [String] = []) -> (Int) -> [String] {
            { port in
                [".build/release/flexosd", "launch", "--json", "--listen", "127.0.0.1:\(port)"] + extra + [
                    "Guest/build/\(set)"
                ]
            }
        }
        return [
            Variant(name: "redis-server", command: RedisServers.redisServer(port:)),
            Variant(name: "kvstore-fcalls", command: flexosd("kvstore-fcalls")),
            Variant(
                name: "kvstore-fcalls --no-kernel-sleep", command: flexosd("kvstore-fcalls", ["--no-kernel-sleep"])),
            Variant(name: "kvstore-parser-vmept2", command: flexosd("kvstore-parser-vmept2")),
            Variant(
                name: "kvstore-parser-vmept2 --no-kernel-sleep",
                command: flexosd("kvstore-parser-vmept2", ["--no-kernel-sleep"])),
            Variant(name: "kvstore-vmept3", command: flexosd("kvstore-vmept3")),
            Variant(name: "kvstore-vmept3 --no-kernel-sleep", command: flexosd("kvstore-vmept3", ["--no-kernel-sleep"]))
        ]
    }

    func run() throws {
        print("| server, -P | GET req/s | ratio to fcalls | CPU µs/request | ratio to fcalls | exits/request |")
        print("| --- | --- | --- | --- | --- | --- |")
        for depth in pipeline {
            var samples = [[Sample]](repeating: [], count: variants.count)
            for round in 1...runs {
                for (index, variant) in variants.enumerated() {
                    let sample = try measure(variant, depth: depth)
                    samples[index].append(sample)
                    FileHandle.standardError.write(
                        Data(
                            "round \(round) -P \(depth) \(variant.name): \(Int(sample.requestsPerSecond)) req/s, \(String(format: "%.2f", sample.cpuMicrosecondsPerRequest)) µs CPU, \(sample.exitsPerRequest.map { String(format: "%.4f", $0) } ?? "-") exits per request\n"
                                .utf8))
                }
            }
            let medians = samples.map(NotificationCost.median)
            let fcalls = medians[1]
            for (variant, row) in zip(variants, medians) {
                print(
                    String(
                        format: "| %@, -P %d | %.0f | %.2fx | %.2f | %.2fx | %@ |", variant.name, depth,
                        row.requestsPerSecond, row.requestsPerSecond / fcalls.requestsPerSecond,
                        row.cpuMicrosecondsPerRequest, row.cpuMicrosecondsPerRequest / fcalls.cpuMicrosecondsPerRequest,
                        row.exitsPerRequest.map { String(format: "%.4f", $0) } ?? "-"))
            }
        }
    }

    /// Starts `variant`, waits for PING, runs redis-benchmark GET at `depth` and reads the
    /// server's CPU time around it; a FlexOS set's exits come from its --json report.
    private func measure(_ variant: Variant, depth: Int) throws -> Sample {
        let port = try RedisServers.freePort()
        let report = variant.isFlexOS ? Pipe() : nil
        let server = try RedisServers.start(variant.command(port), output: report)
        var stopped = false
        defer {
            if !stopped {
                server.terminate()
                server.waitUntilExit()
            }
        }
        try RedisServers.waitForPing(port: port, server: server)
        let count = depth == 1 ? requests : 4 * requests
        let before = NotificationCost.cpuNanoseconds(of: server.processIdentifier)
        let figures = try RedisServers.benchmark(
            port: port, requests: count, clients: clients, pipeline: depth, tests: "get")
        let cpu = NotificationCost.cpuNanoseconds(of: server.processIdentifier) - before
        server.terminate()
        let output = report?.fileHandleForReading.readDataToEndOfFile()
        server.waitUntilExit()
        stopped = true
        let exits = output.flatMap(NotificationCost.exitsToMonitor(inReport:)).map { Double($0) / Double(count) }
        return Sample(
            requestsPerSecond: figures["GET"] ?? 0, cpuMicrosecondsPerRequest: Double(cpu) / 1000 / Double(count),
            exitsPerRequest: exits)
    }

    /// CPU time of every thread of process `pid` so far, in nanoseconds (the first field of
    /// each /proc/PID/task/TID/schedstat: time on a CPU, guest mode included).
    static func cpuNanoseconds(of pid: Int32) -> UInt64 {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8))?
                .split(separator: " ").first.flatMap { UInt64($0) }
        }.reduce(0, +)
    }

    /// Exits to flexosd in a `flexosd launch --json` report: every VM's exits by reason.
    static func exitsToMonitor(inReport data: Data) -> UInt64? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let compartments = object["compartments"] as? [[String: Any]]
        else { return nil }
        return compartments.compactMap { $0["exits"] as? [String: UInt64] }.flatMap(\.values).reduce(0, +)
    }

    /// The median of each figure over `samples`.
    static func median(_ samples: [Sample]) -> Sample {
        let exits = samples.compactMap(\.exitsPerRequest)
        return Sample(
            requestsPerSecond: flexos_bench.median(samples.map(\.requestsPerSecond)),
            cpuMicrosecondsPerRequest: flexos_bench.median(samples.map(\.cpuMicrosecondsPerRequest)),
            exitsPerRequest: exits.isEmpty ? nil : flexos_bench.median(exits))
    }
}
