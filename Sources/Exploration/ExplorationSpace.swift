import Conformation
import GuestImage

/// What `flexosctl explore` explores: every placement of some libraries of an
/// application into compartments, under each isolating mechanism, with each compartment
/// hardened by one of a few hardening sets; a benchmark that labels a configuration with
/// a figure, and a budget that figure must meet. Read from a space file (SpaceParser).
public struct ExplorationSpace: Sendable {
    /// The name of the space (its file name without .yaml).
    public var name: String
    public var application: String
    /// The libraries whose placement varies, in the file's order. Libraries of the image
    /// not named here go with the application's compartment.
    public var libraries: [String]
    /// The mechanisms that separate two or more compartments. One compartment has no
    /// boundary, so its mechanism does not matter: it is built with fcalls.
    public var mechanisms: [Mechanism]
    /// The hardening sets a compartment may take.
    public var hardeningChoices: [[Hardening]]
    /// The mechanisms from weakest to strongest.
    public var mechanismOrder: [Mechanism]
    public var benchmark: Benchmark
    public var budget: Budget

    public init(
        name: String, application: String, libraries: [String], mechanisms: [Mechanism],
        hardeningChoices: [[Hardening]],
        mechanismOrder: [Mechanism] = ExplorationSpace.defaultMechanismOrder, benchmark: Benchmark, budget: Budget
    ) {
        self.name = name
        self.application = application
        self.libraries = libraries
        self.mechanisms = mechanisms
        self.hardeningChoices = hardeningChoices
        self.mechanismOrder = mechanismOrder
        self.benchmark = benchmark
        self.budget = budget
    }

    /// The talk's order: no isolation, then protection keys, then a VM per compartment.
    public static let defaultMechanismOrder: [Mechanism] = [.fcalls, .intelMPK, .vmept]

    /// How to label a running configuration with a figure.
    public struct Benchmark: Sendable, Codable, Equatable {
        /// A shell command; `{host}` and `{port}` become the image set's listening address.
        public var command: String
        /// A command that succeeds once the image set serves (tried until it does).
        public var ready: String?
        /// A regular expression whose first capture group is a number; the figure is the
        /// mean of every match in the command's output.
        public var figure: String
        /// What the figure counts, for people (e.g. requests/s).
        public var unit: String
        public var higherIsBetter: Bool
        /// How many times the benchmark runs per configuration; the figure is the median.
        public var runs: Int
        /// How long one run may take.
        public var timeoutSeconds: Int

        public init(
            command: String, ready: String? = nil, figure: String, unit: String, higherIsBetter: Bool = true,
            runs: Int = 1, timeoutSeconds: Int = 300
        ) {
            self.command = command
            self.ready = ready
            self.figure = figure
            self.unit = unit
            self.higherIsBetter = higherIsBetter
            self.runs = runs
            self.timeoutSeconds = timeoutSeconds
        }
    }

    /// What a configuration's figure must reach.
    public enum Budget: Sendable, Equatable, Codable {
        /// A fraction of the best figure measured (0.8 means within 80% of the fastest).
        case fractionOfBest(Double)
        /// A figure to reach.
        case absolute(Double)

        public var description: String {
            switch self {
            case .fractionOfBest(let fraction): "\(fraction)x the best"
            case .absolute(let figure): "\(figure)"
            }
        }
    }

    /// Every configuration of the space, each once: for each placement of the libraries
    /// into compartments (each set partition), each mechanism when there are two or more
    /// compartments, and each choice of hardening per compartment.
    public func configurations() -> [Configuration] {
        var result: [Configuration] = []
        for layout in SetPartitions.of(libraries) {
            let mechanisms: [Mechanism] = layout.count == 1 ? [.fcalls] : self.mechanisms
            for mechanism in mechanisms {
                for hardening in choices(count: layout.count) {
                    let compartments = zip(layout, hardening).map {
                        Configuration.Compartment(libraries: $0, hardening: $1)
                    }
                    result.append(Configuration(mechanism: mechanism, compartments: compartments))
                }
            }
        }
        return result
    }

    /// Every way to give `count` compartments one hardening set each.
    private func choices(count: Int) -> [[[Hardening]]] {
        guard count > 0 else { return [[]] }
        return choices(count: count - 1).flatMap { rest in hardeningChoices.map { rest + [$0] } }
    }
}

/// Set partitions, as restricted growth strings: element i goes to block a[i], where
/// a[0] = 0 and a[i] <= 1 + max(a[0..<i]). Each partition comes once, blocks in the
/// order of their first element.
enum SetPartitions {
    static func of<T>(_ elements: [T]) -> [[[T]]] {
        guard !elements.isEmpty else { return [] }
        var result: [[[T]]] = []
        var assignment = [Int](repeating: 0, count: elements.count)
        func extend(_ index: Int, blocks: Int) {
            if index == elements.count {
                var partition = [[T]](repeating: [], count: blocks)
                for (element, block) in zip(elements, assignment) { partition[block].append(element) }
                result.append(partition)
                return
            }
            for block in 0...blocks {
                assignment[index] = block
                extend(index + 1, blocks: max(blocks, block + 1))
            }
        }
        assignment[0] = 0
        extend(1, blocks: 1)
        return result
    }
}
