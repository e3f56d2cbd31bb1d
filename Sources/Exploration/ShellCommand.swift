import Foundation

/// A command of the space file run by /bin/sh under coreutils' timeout, which puts it in
/// a process group of its own and kills the whole group when time is up, so a benchmark
/// that hangs never outlives its turn.
struct ShellCommand {
    let command: String
    let timeoutSeconds: Int

    /// What a command's status says, in words: timeouts named as such.
    static func describe(_ status: Int32) -> String {
        switch status {
        case 124: "timed out"
        case killedAfterTimeout: "timed out, and was killed after it ignored SIGTERM"
        default: "exited with status \(status)"
        }
    }

    /// The status `run` returns when timeout(1) had to SIGKILL the command.
    static let killedAfterTimeout: Int32 = 128 + SIGKILL

    /// Runs it, its output (standard output and error together) going to `outputPath`;
    /// returns its exit status (124 when it timed out, 137 when it was then killed).
    func run(outputPath: String) throws(ExplorationError) -> Int32 {
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
            let output = FileHandle(forWritingAtPath: outputPath)
        else {
            throw ExplorationError.results(path: outputPath, "cannot be written")
        }
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--kill-after=5", "\(timeoutSeconds)", "/bin/sh", "-c", command]
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw ExplorationError.missingTool("cannot run /usr/bin/timeout (coreutils): \(error.localizedDescription)")
        }
        ChildProcesses.shared.add(process.processIdentifier)
        process.waitUntilExit()
        ChildProcesses.shared.remove(process.processIdentifier)
        // timeout(1) kills itself with the signal it had to send: that is a timeout too.
        if process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL {
            return ShellCommand.killedAfterTimeout
        }
        return process.terminationStatus
    }

    /// At most `limit` bytes of what a command wrote to `path` (the start, where the figure
    /// is); the file itself is cut to that too, with a line saying how much was cut, so that
    /// a benchmark that floods its output costs neither memory nor disk.
    static func cappedOutput(_ path: String, limit: Int = 1 << 20) -> String {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: limit)) ?? Data()
        if let size = try? handle.seekToEnd(), size > UInt64(limit) {
            try? handle.truncate(atOffset: UInt64(limit))
            _ = try? handle.seekToEnd()
            handle.write(Data("\n[flexosctl: \(size - UInt64(limit)) more bytes of output were cut]\n".utf8))
        }
        return String(decoding: head, as: UTF8.self)
    }
}

/// The children an exploration has running, so that an interrupt (SIGINT, SIGTERM,
/// SIGHUP) ends them too instead of leaving an image set or a benchmark behind.
final class ChildProcesses: @unchecked Sendable {
    static let shared = ChildProcesses()
    private let lock = NSLock()
    private var pids: Set<Int32> = []
    private var sources: [DispatchSourceSignal] = []

    func add(_ pid: Int32) { lock.withLock { _ = pids.insert(pid) } }
    func remove(_ pid: Int32) { lock.withLock { _ = pids.remove(pid) } }

    /// On an interrupt: SIGTERM every child, then exit with 128 + the signal.
    func endChildrenOnInterrupt() {
        lock.withLock {
            guard sources.isEmpty else { return }
            for signal in [SIGINT, SIGTERM, SIGHUP] {
                Foundation.signal(signal, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
                source.setEventHandler { [self] in
                    let children = lock.withLock { pids }
                    for pid in children { kill(pid, SIGTERM) }
                    FileHandle.standardError.write(
                        Data(
                            "\nflexosctl: interrupted; stopped \(children.count) child process(es); run the same command again to resume\n"
                                .utf8))
                    exit(128 + signal)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
