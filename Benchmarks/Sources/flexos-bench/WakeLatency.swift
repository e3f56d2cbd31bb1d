import ArgumentParser
import Foundation
import Glibc

/// `flexos-bench wake`: how fast an idle appliance answers. One client sends a burst of GETs
/// one at a time, pauses, and sends the next burst: the first request of each burst finds
/// every side of the server asleep (the device thread, each compartment), the others find it
/// awake. redis-benchmark has no pause between requests, so this client is its own: one
/// connection, `-c 1 -P 1`, a RESP GET of a missing key.
struct WakeLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wake",
        abstract:
            "p50/p99 latency of the first request after a pause (everything asleep) and of the requests after it, for redis-server and the kvstore appliance sleeping in the kernel and in flexosd.",
        discussion:
            "Needs release builds of flexosd and Guest/build/kvstore-{fcalls,parser-vmept2} (scripts/bench builds them), and redis-server. The servers take turns round by round; percentiles are over every round."
    )

    @Option(help: "Rounds; each server runs once per round.")
    var runs = 5

    @Option(help: "Bursts per server and round.")
    var bursts = 100

    @Option(help: "Requests per burst.")
    var burst = 10

    @Option(help: "Pause between bursts, in milliseconds.")
    var pause = 10

    var variants: [NotificationCost.Variant] {
        func flexosd(_ set: String, _ extra: [String] = []) -> (Int) -> [String] {
            { port in
                [".build/release/flexosd", "launch", "--listen", "127.0.0.1:\(port)"] + extra + ["Guest/build/\(set)"]
            }
        }
        return [
            .init(name: "redis-server", command: RedisServers.redisServer(port:)),
            .init(name: "kvstore-fcalls", command: flexosd("kvstore-fcalls")),
            .init(name: "kvstore-parser-vmept2", command: flexosd("kvstore-parser-vmept2")),
            .init(
                name: "kvstore-parser-vmept2 --no-kernel-sleep",
                command: flexosd("kvstore-parser-vmept2", ["--no-kernel-sleep"]))
        ]
    }

    func run() throws {
        var first = [[Double]](repeating: [], count: variants.count)
        var rest = [[Double]](repeating: [], count: variants.count)
        for round in 1...runs {
            for (index, variant) in variants.enumerated() {
                let (wake, awake) = try measure(variant)
                first[index] += wake
                rest[index] += awake
                FileHandle.standardError.write(
                    Data("round \(round) \(variant.name): first p50 \(Self.format(Self.percentile(wake, 50)))\n".utf8))
            }
        }
        print("| server | first request p50 | p99 | later requests p50 | p99 |")
        print("| --- | --- | --- | --- | --- |")
        for (index, variant) in variants.enumerated() {
            print(
                "| \(variant.name) | \(Self.format(Self.percentile(first[index], 50))) | \(Self.format(Self.percentile(first[index], 99))) | \(Self.format(Self.percentile(rest[index], 50))) | \(Self.format(Self.percentile(rest[index], 99))) |"
            )
        }
    }

    /// One server's latencies in microseconds: of the first request of each burst, and of the others.
    private func measure(_ variant: NotificationCost.Variant) throws -> ([Double], [Double]) {
        let port = try RedisServers.freePort()
        let server = try RedisServers.start(variant.command(port))
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        try RedisServers.waitForPing(port: port, server: server)
        let connection = try Connection(port: port)
        let request = Array("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n".utf8)
        let reply = Array("$-1\r\n".utf8)
        var first: [Double] = []
        var rest: [Double] = []
        for _ in 0..<bursts {
            usleep(UInt32(pause * 1000))
            for index in 0..<burst {
                let started = monotonicNow()
                try connection.exchange(request, expecting: reply)
                let micros = Double(monotonicNow() - started) / 1000
                if index == 0 { first.append(micros) } else { rest.append(micros) }
            }
        }
        return (first, rest)
    }

    static func percentile(_ values: [Double], _ p: Int) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * p / 100)]
    }

    static func format(_ micros: Double) -> String { String(format: "%.0f µs", micros) }
}

/// One blocking TCP connection to 127.0.0.1 with Nagle off.
private final class Connection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(fd)
            throw ValidationError("connect to port \(port): \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Sends `request` and reads until exactly `expected` came back.
    func exchange(_ request: [UInt8], expecting expected: [UInt8]) throws {
        guard send(fd, request, request.count, 0) == request.count else {
            throw ValidationError("send: \(String(cString: strerror(errno)))")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while received.count < expected.count {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { throw ValidationError("the server closed the connection or failed: \(errno)") }
            received += buffer[0..<count]
        }
        guard received == expected else {
            throw ValidationError("unexpected reply \(String(decoding: received, as: UTF8.self).debugDescription)")
        }
    }
}
