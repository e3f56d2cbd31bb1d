import ArgumentParser
import Foundation
import Glibc

/// Servers that speak Redis, started for a benchmark and measured with redis-benchmark:
/// what `kvstore` and `notify` share.
enum RedisServers {
    /// Where a started server's standard error goes, so that a server that never answers
    /// can be asked why.
    static func errorLog(of process: Process) -> String {
        NSTemporaryDirectory() + "flexos-bench-\(process.processIdentifier).err"
    }

    /// Starts `arguments` with its output going to `output` (or nowhere) and its errors to
    /// a file of its own (`errorLog`, removed when it answers).
    static func start(_ arguments: [String], output: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = output ?? FileHandle.nullDevice
        let log = NSTemporaryDirectory() + "flexos-bench-starting-\(UUID().uuidString).err"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log) ?? FileHandle.nullDevice
        try process.run()
        try? FileManager.default.moveItem(atPath: log, toPath: errorLog(of: process))
        return process
    }

    /// Runs `arguments` to its end and returns its standard output.
    static func capture(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits until the server on `port` answers PING (20 s at most); the error says what the
    /// server printed.
    static func waitForPing(port: Int, server: Process) throws {
        let log = errorLog(of: server)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let deadline = Date().addingTimeInterval(20)
        while (try? capture(["/usr/bin/redis-cli", "-p", "\(port)", "PING"])) != "PONG\n" {
            guard Date() < deadline, server.isRunning else {
                let printed = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw ValidationError(
                    "\(server.arguments?.joined(separator: " ") ?? "the server") did not answer PING on port \(port)"
                        + (server.isRunning ? "" : " (it exited with status \(server.terminationStatus))")
                        + (printed.isEmpty ? "" : "; it printed:\n" + printed))
            }
            usleep(50_000)
        }
    }

    /// redis-benchmark's requests per second by test name ("SET", "GET").
    static func benchmark(port: Int, requests: Int, clients: Int, pipeline: Int, tests: String) throws -> [String:
        Double]
    {
        figures(
            in: try capture([
                "/usr/bin/redis-benchmark", "-p", "\(port)", "-q", "-n", "\(requests)", "-c", "\(clients)",
                "-P", "\(pipeline)", "-t", tests
            ]))
    }

    /// Requests per second by test name in `redis-benchmark -q` output (the final line of
    /// each test: "NAME: N requests per second, p50=...").
    static func figures(in output: String) -> [String: Double] {
        var figures: [String: Double] = [:]
        for line in output.split(whereSeparator: { $0 == "\r" || $0 == "\n" })
        where line.contains("requests per second") {
            guard let colon = line.range(of: ": ", options: .backwards),
                let number = line[colon.upperBound...].split(separator: " ").first.flatMap({ Double($0) })
            else { continue }
            figures[line[..<colon.lowerBound].trimmingCharacters(in: .whitespaces)] = number
        }
        return figures
    }

    /// A loopback port no socket uses now, from the kernel (bind to port 0): a random pick
    /// once collided with a redis-benchmark client's ephemeral port.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw ValidationError("no free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The redis-server baseline on `port`: no persistence, loopback only.
    static func redisServer(port: Int) -> [String] {
        ["/usr/bin/redis-server", "--port", "\(port)", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    }
}
