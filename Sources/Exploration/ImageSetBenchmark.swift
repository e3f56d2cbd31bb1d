import Conformation
import Foundation
import Toolchain

/// Measures one configuration for real: writes its conformation, builds its image set
/// (library objects come from the build cache when they can), boots it with
/// `flexosd launch --listen 127.0.0.1:0`, waits until it serves, runs the space's benchmark
/// against it and reads the figure from the output; then stops the image set.
public struct ImageSetBenchmark: Sendable {
    public let space: ExplorationSpace
    public let store: ResultStore
    public let builder: ImageBuilder
    /// The flexosd executable that boots the image sets.
    public let flexosd: String

    public init(space: ExplorationSpace, store: ResultStore, builder: ImageBuilder, flexosd: String) {
        self.space = space
        self.store = store
        self.builder = builder
        self.flexosd = flexosd
        ChildProcesses.shared.endChildrenOnInterrupt()
    }

    /// How long an image set may take to say where it listens.
    static let launchTimeout: TimeInterval = 30

    public func measure(_ configuration: Configuration, node: Int) -> BenchmarkResult {
        let start = Date()
        let built: BuildResult
        do { built = try build(configuration, node: node) } catch {
            return .failed("build: \(error)", buildSeconds: Date().timeIntervalSince(start))
        }
        let buildSeconds = Date().timeIntervalSince(start)
        do {
            let runs = try run(built.folder, node: node)
            return BenchmarkResult(
                figure: median(runs), runs: runs, buildSeconds: buildSeconds, compiledLibraries: built.compiledLibraries
            )
        } catch {
            return .failed("\(error)", buildSeconds: buildSeconds, compiledLibraries: built.compiledLibraries)
        }
    }

    private func build(_ configuration: Configuration, node: Int) throws -> BuildResult {
        let path = store.conformationPath(node)
        try configuration.conformationYAML(application: space.application).write(
            toFile: path, atomically: true, encoding: .utf8)
        let conformation = try Conformation.load(path: path)
        let plan = try BuildPlan(
            conformation: conformation, application: space.application, tree: builder.tree, file: path)
        return try builder.build(plan, into: store.buildFolder(node))
    }

    /// Boots the image set and runs the benchmark `runs` times against it.
    private func run(_ folder: String, node: Int) throws(ExplorationError) -> [Double] {
        let log = store.logPath(node)
        let monitor = try launch(folder, log: log)
        defer { stop(monitor) }
        let port = try waitForListener(monitor, log: log)
        let substitute = { (command: String) in
            command.replacingOccurrences(of: "{host}", with: "127.0.0.1").replacingOccurrences(
                of: "{port}", with: "\(port)")
        }
        if let ready = space.benchmark.ready { try waitUntilReady(substitute(ready), monitor: monitor, log: log) }
        var figures: [Double] = []
        for run in 1...space.benchmark.runs {
            let output = log + ".benchmark-\(run).txt"
            let status = try ShellCommand(
                command: substitute(space.benchmark.command), timeoutSeconds: space.benchmark.timeoutSeconds
            ).run(outputPath: output)
            let text = ShellCommand.cappedOutput(output)
            guard status == 0 else {
                throw failure("the benchmark \(ShellCommand.describe(status))", output: text, log: output)
            }
            guard let figure = FigureReader(pattern: space.benchmark.figure).figure(in: text) else {
                throw failure(
                    "the benchmark's output has no match of `figure` (\(space.benchmark.figure))", output: text,
                    log: output)
            }
            figures.append(figure)
        }
        return figures
    }

    private func launch(_ folder: String, log: String) throws(ExplorationError) -> Process {
        guard FileManager.default.isExecutableFile(atPath: flexosd) else {
            throw ExplorationError.missingTool(
                "flexosd is not at \(flexosd): build it (swift build) or pass --flexosd PATH")
        }
        guard FileManager.default.createFile(atPath: log, contents: nil), let output = FileHandle(forWritingAtPath: log)
        else {
            throw ExplorationError.results(path: log, "cannot be written")
        }
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flexosd)
        process.arguments = ["launch", "--listen", "127.0.0.1:0", folder]
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw ExplorationError.missingTool("cannot start \(flexosd): \(error.localizedDescription)")
        }
        ChildProcesses.shared.add(process.processIdentifier)
        return process
    }

    /// Reads the port from flexosd's `listening on HOST:PORT` line.
    private func waitForListener(_ monitor: Process, log: String) throws(ExplorationError) -> Int {
        let deadline = Date().addingTimeInterval(ImageSetBenchmark.launchTimeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains(" listening on ") }),
                let port = line.split(separator: ":").last.flatMap({ Int($0) })
            {
                return port
            }
            guard monitor.isRunning else {
                throw failure("the image set stopped before it listened", output: text, log: log)
            }
            usleep(20_000)
        }
        throw failure(
            "the image set did not listen within \(Int(ImageSetBenchmark.launchTimeout)) s", output: "", log: log)
    }

    private func waitUntilReady(_ command: String, monitor: Process, log: String) throws(ExplorationError) {
        let deadline = Date().addingTimeInterval(ImageSetBenchmark.launchTimeout)
        while Date() < deadline {
            if try ShellCommand(command: command, timeoutSeconds: 5).run(outputPath: log + ".ready.txt") == 0 { return }
            guard monitor.isRunning else {
                throw failure("the image set stopped before it was ready", output: "", log: log)
            }
            usleep(50_000)
        }
        throw failure(
            "`ready` did not succeed within \(Int(ImageSetBenchmark.launchTimeout)) s", output: "",
            log: log + ".ready.txt")
    }

    /// SIGTERM, then SIGKILL if the monitor has not gone within 5 s.
    private func stop(_ monitor: Process) {
        if monitor.isRunning { monitor.terminate() }
        let deadline = Date().addingTimeInterval(5)
        while monitor.isRunning && Date() < deadline { usleep(10_000) }
        if monitor.isRunning { kill(monitor.processIdentifier, SIGKILL) }
        monitor.waitUntilExit()
        ChildProcesses.shared.remove(monitor.processIdentifier)
    }

    /// A failure with the last lines of the output, at most a few hundred bytes of them:
    /// it goes into the results and the report.
    private func failure(_ what: String, output: String, log: String) -> ExplorationError {
        let tail = output.split(separator: "\n").suffix(3).map { $0.prefix(200) }.joined(separator: " / ")
        return .results(path: log, what + (tail.isEmpty ? "" : ": " + tail))
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// Reads a benchmark's figure: the mean of every number the pattern's first capture
/// group matches (redis-benchmark's SET and GET lines give one figure).
public struct FigureReader: Sendable {
    public let pattern: String

    public init(pattern: String) { self.pattern = pattern }

    public func figure(in output: String) -> Double? {
        guard let expression = try? NSRegularExpression(pattern: pattern) else { return nil }
        let text = output as NSString
        let numbers = expression.matches(in: output, range: NSRange(location: 0, length: text.length)).compactMap {
            match -> Double? in
            let range = match.range(at: 1)
            guard range.location != NSNotFound, let value = Double(text.substring(with: range)), value.isFinite else {
                return nil
            }
            return value
        }
        return numbers.isEmpty ? nil : numbers.reduce(0, +) / Double(numbers.count)
    }
}
