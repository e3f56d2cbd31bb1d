import Foundation

/// The folder an exploration keeps its results in, so that an interrupted exploration
/// resumes where it stopped: results.json (every measurement, by configuration id,
/// written after each one), and per measured configuration its conformation, build
/// folder and monitor log.
public struct ResultStore: Sendable {
    public let folder: String
    private let benchmark: ExplorationSpace.Benchmark

    /// What results.json holds.
    struct Contents: Codable {
        var format = 1
        var benchmark: ExplorationSpace.Benchmark
        var measurements: [String: BenchmarkResult]
    }

    public init(folder: String, space: ExplorationSpace) throws(ExplorationError) {
        self.folder = folder
        benchmark = space.benchmark
        for sub in ["", "/configs", "/builds", "/logs"] {
            do {
                try FileManager.default.createDirectory(atPath: folder + sub, withIntermediateDirectories: true)
            } catch {
                throw ExplorationError.results(
                    path: folder + sub, "cannot create the folder: \(error.localizedDescription)")
            }
        }
    }

    var resultsPath: String { folder + "/results.json" }

    /// The measurements of earlier runs. Those of a different benchmark are not
    /// comparable: they are dropped, and the returned note says so.
    public func load() throws(ExplorationError) -> (measurements: [String: BenchmarkResult], note: String?) {
        guard let data = FileManager.default.contents(atPath: resultsPath) else { return ([:], nil) }
        guard let contents = try? JSONDecoder().decode(Contents.self, from: data) else {
            throw ExplorationError.results(
                path: resultsPath, "is not an exploration's results file; move it away or pass another --results folder"
            )
        }
        guard contents.benchmark == benchmark else {
            return ([:], "the benchmark changed since \(resultsPath) was written: measuring every configuration again")
        }
        return (contents.measurements, nil)
    }

    /// Adds one measurement to results.json (written whole, then renamed into place).
    public func record(_ measurement: BenchmarkResult, id: String, into measurements: inout [String: BenchmarkResult])
        throws(ExplorationError)
    {
        measurements[id] = measurement
        try write(Contents(benchmark: benchmark, measurements: measurements), to: resultsPath)
    }

    public func conformationPath(_ node: Int) -> String { folder + "/configs/" + name(node) + ".yaml" }
    public func buildFolder(_ node: Int) -> String { folder + "/builds/" + name(node) }
    public func logPath(_ node: Int) -> String { folder + "/logs/" + name(node) + ".log" }

    /// Configurations are numbered from 1 in the order the space enumerates them.
    public func name(_ node: Int) -> String {
        let digits = String(node + 1)
        return "c" + String(repeating: "0", count: max(0, 3 - digits.count)) + digits
    }

    func write(_ value: some Encodable, to path: String) throws(ExplorationError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw ExplorationError.results(path: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
