/// What measuring one configuration gave.
public struct BenchmarkResult: Codable, Sendable, Equatable {
    /// The median of the runs' figures; nil when the measurement failed.
    public var figure: Double?
    public var runs: [Double]
    /// Seconds spent building its image set, and the libraries that build compiled
    /// (the others came from the build cache).
    public var buildSeconds: Double
    public var compiledLibraries: [String]
    /// Why it could not be measured (the build, the launch or the benchmark failed).
    public var error: String?

    public init(
        figure: Double?, runs: [Double] = [], buildSeconds: Double = 0, compiledLibraries: [String] = [],
        error: String? = nil
    ) {
        self.figure = figure
        self.runs = runs
        self.buildSeconds = buildSeconds
        self.compiledLibraries = compiledLibraries
        self.error = error
    }

    public static func failed(_ error: String, buildSeconds: Double = 0, compiledLibraries: [String] = [])
        -> BenchmarkResult
    {
        BenchmarkResult(figure: nil, buildSeconds: buildSeconds, compiledLibraries: compiledLibraries, error: error)
    }
}

/// Where a configuration stands once the walk is over.
public enum Verdict: Equatable, Sendable {
    case met
    case missed
    /// Measuring failed; it counts as missing the budget.
    case failed
    /// Not measured: the node given lies below it and missed the budget.
    case pruned(by: Int)
    /// Not measured: its mechanism cannot run on this host (the reason says why). It
    /// prunes nothing and is no candidate.
    case unavailable(String)

    public var isMeasured: Bool {
        switch self {
        case .pruned, .unavailable: false
        default: true
        }
    }
}

/// The outcome of an exploration.
public struct Exploration: Sendable {
    public let space: ExplorationSpace
    public let poset: SafetyPoset
    /// Indexed like the poset's nodes; nil for pruned nodes.
    public let measurements: [BenchmarkResult?]
    public let verdicts: [Verdict]
    /// The best figure measured.
    public let best: Double?
    /// The figure a configuration had to reach (or not pass, when lower is better).
    public let threshold: Double?
    /// The safest configurations that meet the budget: met, with nothing safer that met.
    public let candidates: [Int]
    /// How many measurements this run made (the others came from earlier runs' results).
    public let measuredNow: Int

    public var measuredCount: Int { verdicts.filter(\.isMeasured).count }
}

/// What the walk does with a node, said before it does it.
public enum WalkStep: Sendable {
    case pruned
    /// Its measurement comes from an earlier run's results.
    case measuredBefore
    case measuring
    /// Its mechanism cannot run here.
    case unavailable(String)
}

/// The lazy walk of the talk: from the least safe configuration up, measure a node only
/// when nothing below it missed the budget, because a safer configuration is assumed to
/// be no faster; a node that misses prunes everything above it.
public struct Explorer: Sendable {
    public let space: ExplorationSpace
    public let poset: SafetyPoset

    public init(space: ExplorationSpace) {
        self.space = space
        poset = SafetyPoset(
            space.configurations(), order: SafetyOrder(mechanismOrder: space.mechanismOrder, libraries: space.libraries)
        )
    }

    /// Walks the space. `known` holds measurements of earlier runs by configuration id;
    /// `measure` is called for every other node the walk reaches, `step` before each node
    /// (its place in the walk, the node, what happens to it). `unavailable` says why a
    /// node cannot run on this host (nil: it can); such nodes are listed, not measured.
    public func run<E: Error>(
        known: [String: BenchmarkResult] = [:],
        unavailable: (_ node: Int) -> String? = { _ in nil },
        step: (_ position: Int, _ node: Int, _ what: WalkStep) -> Void = { _, _, _ in },
        measure: (_ node: Int) throws(E) -> BenchmarkResult
    ) throws(E) -> Exploration {
        var measurements = [BenchmarkResult?](repeating: nil, count: poset.nodes.count)
        var prunedBy = [Int?](repeating: nil, count: poset.nodes.count)
        var unavailableWhy = [String?](repeating: nil, count: poset.nodes.count)
        var measuredNow = 0
        for (position, node) in poset.walk.enumerated() {
            if let reason = unavailable(node) {
                step(position, node, .unavailable(reason))
                unavailableWhy[node] = reason
                continue
            }
            let threshold = self.threshold(best: best(of: measurements))
            let misser = poset.below[node].first { below in
                measurements[below].map { !meets($0, threshold: threshold) } ?? false
            }
            if let misser {
                step(position, node, .pruned)
                prunedBy[node] = misser
                continue
            }
            if let earlier = known[poset.nodes[node].id], earlier.figure != nil {
                step(position, node, .measuredBefore)
                measurements[node] = earlier
            } else {
                step(position, node, .measuring)
                measurements[node] = try measure(node)
                measuredNow += 1
            }
        }
        return conclude(
            measurements: measurements, prunedBy: prunedBy, unavailable: unavailableWhy, measuredNow: measuredNow)
    }

    /// The verdicts under the final best figure. A node pruned under an earlier, lower
    /// best would miss under the final one too, so pruning never hides a candidate.
    private func conclude(measurements: [BenchmarkResult?], prunedBy: [Int?], unavailable: [String?], measuredNow: Int)
        -> Exploration
    {
        let best = best(of: measurements)
        let threshold = self.threshold(best: best)
        let verdicts: [Verdict] = poset.nodes.indices.map { node in
            if let reason = unavailable[node] { return .unavailable(reason) }
            if let by = prunedBy[node] { return .pruned(by: by) }
            guard let measurement = measurements[node], measurement.figure != nil else { return .failed }
            return meets(measurement, threshold: threshold) ? .met : .missed
        }
        let candidates = poset.nodes.indices.filter { node in
            verdicts[node] == .met
                && !poset.nodes.indices.contains { poset.below[$0].contains(node) && verdicts[$0] == .met }
        }
        return Exploration(
            space: space, poset: poset, measurements: measurements, verdicts: verdicts, best: best,
            threshold: threshold, candidates: candidates, measuredNow: measuredNow)
    }

    private func best(of measurements: [BenchmarkResult?]) -> Double? {
        let figures = measurements.compactMap { $0?.figure }
        return space.benchmark.higherIsBetter ? figures.max() : figures.min()
    }

    private func threshold(best: Double?) -> Double? {
        switch space.budget {
        case .absolute(let figure): return figure
        case .fractionOfBest(let fraction):
            guard let best else { return nil }
            return space.benchmark.higherIsBetter ? best * fraction : best / fraction
        }
    }

    private func meets(_ measurement: BenchmarkResult, threshold: Double?) -> Bool {
        guard let figure = measurement.figure else { return false }
        guard let threshold else { return true }
        return space.benchmark.higherIsBetter ? figure >= threshold : figure <= threshold
    }
}
