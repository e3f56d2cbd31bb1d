import ArgumentParser
import Foundation
import Glibc

/// `flexosctl launch` to the guest's first console line, and the daemon's own memory.
struct DaemonLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract:
            "Median time from spawning `flexosctl launch` to the first console line of a vmept image set; flexosd's resident memory."
    )

    @Option(help: "The flexosd and flexosctl binaries' folder.")
    var binaries = ".build/release"

    @Option(help: "The image set to launch (two compartments, vmept).")
    var image = "Guest/build/example-vmept2"

    @Option(help: "A long-running image set for the memory measurement.")
    var longRunning = "Guest/build/ticker-vmept2"

    @Option(help: "Launches.")
    var runs = 30

    func run() throws {
        let socket = NSTemporaryDirectory() + "flexos-bench-\(getpid()).sock"
        let daemon = try spawnDaemon(socket: socket)
        defer {
            kill(daemon, SIGTERM)
            var status: Int32 = 0
            waitpid(daemon, &status, 0)
        }
        let idle = residentMemory(daemon)

        var firstLine: [Double] = []
        var launchReply: [Double] = []
        var inside: [Double] = []
        var baseline: [Double] = []
        let imagePath = URL(fileURLWithPath: image).standardized.path
        for index in 0..<runs {
            let list = try spawnAndWait(["\(binaries)/flexosctl", "list", "--socket", socket])
            baseline.append(Double(list.reapedAt - list.spawnedAt))
            let name = "bench-\(index)"
            let launch = try spawnAndWait([
                "\(binaries)/flexosctl", "launch", imagePath, "--name", name, "--socket", socket
            ])
            guard launch.status == 0 else { throw BenchError("flexosctl launch failed (status \(launch.status))") }
            launchReply.append(Double(launch.reapedAt - launch.spawnedAt))
            let status = try waitForFirstOutput(name, socket: socket)
            firstLine.append(Double(status.firstOutput - launch.spawnedAt))
            inside.append(Double(status.firstOutput - status.launchStarted))
            _ = try spawnAndWait(["\(binaries)/flexosctl", "remove", name, "--socket", socket])
        }
        _ = try spawnAndWait([
            "\(binaries)/flexosctl", "launch", URL(fileURLWithPath: longRunning).standardized.path, "--name",
            "resident", "--socket", socket
        ])
        usleep(500_000)
        let running = residentMemory(daemon)

        print("flexos-bench daemon: \(runs) launches of \(image), medians")
        print("  spawn `flexosctl launch` -> first console line:  \(milliseconds(median(firstLine)))")
        print("    of which in the daemon (launch -> first line):   \(milliseconds(median(inside)))")
        print("  spawn `flexosctl launch` -> it returned:           \(milliseconds(median(launchReply)))")
        print("  baseline: spawn `flexosctl list` -> it returned:   \(milliseconds(median(baseline)))")
        print(
            String(
                format: "  ratio first line / flexosctl list:               %.2fx", median(firstLine) / median(baseline)
            ))
        print(
            "  flexosd resident memory without guest memory (VmRSS - RssShmem): idle \(mebibytes(idle.resident)), one image set running (\(longRunning)) \(mebibytes(running.resident))"
        )
        print(
            "    of which anonymous (RssAnon: heap, stacks): idle \(mebibytes(idle.anonymous)), running \(mebibytes(running.anonymous)); the rest is the executable's own pages (RssFile)"
        )
    }

    private func spawnDaemon(socket: String) throws -> pid_t {
        var pid = pid_t()
        let arguments: [String] = ["\(binaries)/flexosd", "--socket", socket, "--log-level", "warning"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, arguments[0], nil, nil, argv, environ) == 0 else {
            throw BenchError("cannot start flexosd")
        }
        for _ in 0..<2000 where access(socket, F_OK) != 0 { usleep(5000) }
        usleep(50_000)
        return pid
    }

    /// Polls the daemon until the image set has printed, and returns its timeline.
    private func waitForFirstOutput(_ name: String, socket: String) throws -> (
        launchStarted: UInt64, firstOutput: UInt64
    ) {
        for _ in 0..<500 {
            let list = try spawnAndWait(["\(binaries)/flexosctl", "list", "--json", "--socket", socket])
            let sets = try JSONSerialization.jsonObject(with: list.output) as? [[String: Any]] ?? []
            if let set = sets.first(where: { $0["name"] as? String == name }),
                let first = set["firstOutputAt"] as? UInt64, let started = set["launchStartedAt"] as? UInt64
            {
                return (started, first)
            }
            usleep(2000)
        }
        throw BenchError("\(name) printed nothing")
    }

    /// Resident memory of `pid` minus its shared-memory pages (the guests' memfds), and
    /// the anonymous part of it.
    private func residentMemory(_ pid: pid_t) -> (resident: UInt64, anonymous: UInt64) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> UInt64 {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
            return (line?.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0) * 1024
        }
        return (field("VmRSS") - field("RssShmem"), field("RssAnon"))
    }

    private func mebibytes(_ bytes: UInt64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}
