import ArgumentParser
import Foundation

/// Servers that speak Redis, started for a benchmark and measured with redis-benchmark:
/// what `kvstore` and `notify` share.
enum RedisServers {
    /// Starts `arguments` with its output going to `output` (or nowhere).
    static func start(_ arguments: [String], output: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = output ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
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

    /// Waits until the server on `port` answers PING (20 s at most).
    static func waitForPing(port: Int, server: Process) throws {
        let deadline = Date().addingTimeInterval(20)
        while (try? capture(["/usr/bin/redis-cli", "-p", "\(port)", "PING"])) != "PONG\n" {
            guard Date() < deadline, server.isRunning else {
                throw ValidationError("the server on port \(port) did not answer PING")
            }
            usleep(50_000)
        }
    }

    /// redis-benchmark's requests per second by test name ("SET", "GET").
    static func benchmark(port: Int, requests: Int, clients: Int, pipeline: Int, tests: String) throws -> [String:
        Double]
    {
        let output = try capture([
            "/usr/bin/redis-benchmark", "-p", "\(port)", "-q", "-n", "\(requests)", "-c", "\(clients)",
            "-P", "\(pipeline)", "-t", tests
        ])
        var figures: [String: Double] = [:]
        for line in output.split(whereSeparator: { $0 == "\r" || $0 == "\n" })
        where line.contains("requests per second") {
            let parts = line.split(separator: ":")
            guard let name = parts.first?.trimmingCharacters(in: .whitespaces),
                let number = parts.dropFirst().first?.split(separator: " ").first.flatMap({ Double($0) })
            else { continue }
            figures[name] = number
        }
        return figures
    }

    /// The redis-server baseline on `port`: no persistence, loopback only.
    static func redisServer(port: Int) -> [String] {
        ["/usr/bin/redis-server", "--port", "\(port)", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    }
}
