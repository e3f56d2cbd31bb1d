import Conformation
import Foundation
import GuestImage
import Yams

extension ExplorationSpace {
    /// A space file is a page of YAML; a bigger one is refused before YAML parses it.
    public static let maxFileSize = 1 << 20
    /// More configurations than this would take days to explore; the file is refused.
    public static let maxConfigurations = 5_000

    /// Reads and checks the space in `path`; its name is the file name without `.yaml`.
    public static func load(path: String) throws(ExplorationError) -> ExplorationSpace {
        let text: String
        do { text = try ConfigFile.text(at: path, limit: maxFileSize) } catch {
            throw ExplorationError.space(file: path, line: nil, error.message)
        }
        return try parse(yaml: text, name: ConfigFile.name(of: path), file: path)
    }

    public static func parse(yaml: String, name: String, file: String = "space.yaml") throws(ExplorationError)
        -> ExplorationSpace
    {
        guard ImageManifest.isValidName(name) else {
            throw ExplorationError.space(
                file: file, line: nil,
                "its name \(name.debugDescription) (the file name) cannot name an exploration: use letters, digits, '-', '_' and '.'"
            )
        }
        return try SpaceParser(file: file).parse(yaml: yaml, name: name)
    }
}

/// Reads the YAML node tree of a space file, so every error can name its line.
struct SpaceParser {
    let file: String

    static let keys = ["app", "libraries", "mechanisms", "mechanism-order", "hardening", "benchmark", "budget"]
    static let benchmarkKeys = ["command", "ready", "figure", "unit", "higher-is-better", "runs", "timeout"]

    func parse(yaml: String, name: String) throws(ExplorationError) -> ExplorationSpace {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch { throw fail(nil, "is not valid YAML: \(error)") }
        guard let root, let top = root.mapping else {
            throw fail(root, "must be a mapping with app, libraries, mechanisms, hardening, benchmark and budget")
        }
        for key in top.keys where !SpaceParser.keys.contains(key.string ?? "") {
            throw fail(key, "unknown key `\(key.string ?? "?")` (expected \(SpaceParser.keys.joined(separator: ", ")))")
        }
        let application = try identifier(try required(top, "app", in: root), "app")
        let libraries = try parseLibraries(try required(top, "libraries", in: root))
        let mechanisms = try parseMechanisms(try required(top, "mechanisms", in: root), "mechanisms")
        let order =
            try top["mechanism-order"].map { node throws(ExplorationError) in try parseMechanismOrder(node) }
            ?? ExplorationSpace.defaultMechanismOrder
        let hardening = try parseHardeningChoices(try required(top, "hardening", in: root))
        let benchmark = try parseBenchmark(try required(top, "benchmark", in: root))
        let budget = try parseBudget(try required(top, "budget", in: root))
        let space = ExplorationSpace(
            name: name, application: application, libraries: libraries, mechanisms: mechanisms,
            hardeningChoices: hardening, mechanismOrder: order, benchmark: benchmark, budget: budget)
        let count = SpaceParser.configurationCount(
            libraries: libraries.count, mechanisms: mechanisms.count, hardening: hardening.count)
        guard count <= ExplorationSpace.maxConfigurations else {
            throw fail(
                root,
                "describes \(count) configurations; at most \(ExplorationSpace.maxConfigurations) can be explored: vary fewer libraries or hardening sets"
            )
        }
        return space
    }

    private func parseLibraries(_ node: Node) throws(ExplorationError) -> [String] {
        guard let items = node.sequence, !items.isEmpty else {
            throw fail(node, "`libraries` must be a non-empty list of the libraries whose placement varies")
        }
        guard items.count <= GuestLayout.maxCompartments else {
            throw fail(
                node, "\(items.count) libraries; at most \(GuestLayout.maxCompartments) can vary (one compartment each)"
            )
        }
        var names: [String] = []
        for item in items {
            let name = try identifier(item, "a library")
            guard !names.contains(name) else { throw fail(item, "library \(name) is named twice") }
            names.append(name)
        }
        return names
    }

    private func parseMechanisms(_ node: Node, _ what: String) throws(ExplorationError) -> [Mechanism] {
        guard let items = node.sequence, !items.isEmpty else {
            throw fail(node, "`\(what)` must be a non-empty list, e.g. [vmept]")
        }
        var mechanisms: [Mechanism] = []
        for item in items {
            let name = item.scalar?.string ?? ""
            guard let mechanism = Mechanism(configName: name) else {
                throw fail(
                    item,
                    "unknown mechanism `\(name)` (known: \(Mechanism.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            guard !mechanisms.contains(mechanism) else { throw fail(item, "mechanism \(name) is named twice") }
            mechanisms.append(mechanism)
        }
        return mechanisms
    }

    private func parseMechanismOrder(_ node: Node) throws(ExplorationError) -> [Mechanism] {
        let order = try parseMechanisms(node, "mechanism-order")
        guard order.count == Mechanism.allCases.count else {
            throw fail(
                node,
                "`mechanism-order` must list every mechanism from weakest to strongest (\(Mechanism.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        return order
    }

    private func parseHardeningChoices(_ node: Node) throws(ExplorationError) -> [[Hardening]] {
        guard let items = node.sequence, !items.isEmpty else {
            throw fail(node, "`hardening` must be a non-empty list of hardening sets, e.g. [[], [stack-protector]]")
        }
        var choices: [[Hardening]] = []
        for item in items {
            guard let names = item.sequence else {
                throw fail(item, "each hardening choice must be a list, e.g. [stack-protector, bounds-checks] or []")
            }
            var set: [Hardening] = []
            for name in names {
                do { set += try Hardening.options(named: name.scalar?.string ?? "") } catch {
                    throw fail(name, error.message)
                }
            }
            let canonical = Hardening.allCases.filter(set.contains)
            guard !choices.contains(canonical) else { throw fail(item, "this hardening set is listed twice") }
            choices.append(canonical)
        }
        return choices
    }

    private func parseBenchmark(_ node: Node) throws(ExplorationError) -> ExplorationSpace.Benchmark {
        guard let mapping = node.mapping else {
            throw fail(node, "`benchmark` must be a mapping with command and figure")
        }
        for key in mapping.keys where !SpaceParser.benchmarkKeys.contains(key.string ?? "") {
            throw fail(
                key,
                "unknown benchmark key `\(key.string ?? "?")` (expected \(SpaceParser.benchmarkKeys.joined(separator: ", ")))"
            )
        }
        let command = try text(try required(mapping, "command", in: node), "benchmark command")
        let figureNode = try required(mapping, "figure", in: node)
        let figure = try text(figureNode, "figure")
        do {
            let expression = try NSRegularExpression(pattern: figure)
            guard expression.numberOfCaptureGroups >= 1 else {
                throw fail(
                    figureNode, "`figure` needs a capture group around the number, e.g. \"GET: ([0-9.]+) requests\"")
            }
        } catch let error as ExplorationError { throw error } catch {
            throw fail(figureNode, "`figure` is not a regular expression: \(error.localizedDescription)")
        }
        var benchmark = ExplorationSpace.Benchmark(command: command, figure: figure, unit: "")
        benchmark.ready = try mapping["ready"].map { node throws(ExplorationError) in try text(node, "ready command") }
        benchmark.unit = try mapping["unit"].map { node throws(ExplorationError) in try text(node, "unit") } ?? ""
        if let node = mapping["higher-is-better"] {
            guard let flag = node.bool else { throw fail(node, "`higher-is-better` must be true or false") }
            benchmark.higherIsBetter = flag
        }
        benchmark.runs =
            try mapping["runs"].map { node throws(ExplorationError) in try integer(node, "runs", in: 1...20) } ?? 1
        benchmark.timeoutSeconds =
            try mapping["timeout"].map { node throws(ExplorationError) in
                try integer(node, "timeout (seconds)", in: 1...3600)
            } ?? 300
        return benchmark
    }

    /// `0.8x` (a fraction of the best figure) or a figure such as `30000`.
    private func parseBudget(_ node: Node) throws(ExplorationError) -> ExplorationSpace.Budget {
        let value = node.scalar?.string ?? ""
        if value.hasSuffix("x"), let fraction = Double(value.dropLast()), fraction > 0, fraction <= 1 {
            return .fractionOfBest(fraction)
        }
        if let figure = Double(value), figure.isFinite, figure > 0 { return .absolute(figure) }
        throw fail(
            node,
            "`budget` must be a fraction of the best figure such as 0.8x (above 0, at most 1), or a positive figure such as 30000"
        )
    }

    /// How many configurations a space holds: for k compartments, the ways to split the
    /// libraries into k (Stirling numbers of the second kind), times the mechanisms when
    /// k > 1, times a hardening set per compartment. Saturates instead of overflowing.
    static func configurationCount(libraries n: Int, mechanisms: Int, hardening: Int) -> Int {
        var stirling = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: n + 1)
        stirling[0][0] = 1
        for i in stride(from: 1, through: n, by: 1) {
            for k in stride(from: 1, through: i, by: 1) {
                stirling[i][k] = stirling[i - 1][k - 1] + k * stirling[i - 1][k]
            }
        }
        var total = 0
        for k in stride(from: 1, through: n, by: 1) {
            var count = stirling[n][k] * (k == 1 ? 1 : mechanisms)
            for _ in 0..<k {
                let (product, overflow) = count.multipliedReportingOverflow(by: hardening)
                count = overflow ? Int.max / 2 : product
            }
            total = min(total + count, Int.max / 2)
        }
        return total
    }

    private func required(_ mapping: Node.Mapping, _ key: String, in node: Node) throws(ExplorationError) -> Node {
        guard let value = mapping[key] else { throw fail(node, "has no `\(key):`") }
        return value
    }

    private func text(_ node: Node, _ what: String) throws(ExplorationError) -> String {
        guard let value = node.scalar?.string, !value.isEmpty else { throw fail(node, "\(what) must be text") }
        return value
    }

    private func identifier(_ node: Node, _ what: String) throws(ExplorationError) -> String {
        let value = try text(node, what)
        guard value.utf8.count <= 64, isIdentifier(value) else {
            throw fail(node, "\(value.debugDescription) cannot name \(what): use letters, digits and _")
        }
        return value
    }

    private func integer(_ node: Node, _ what: String, in range: ClosedRange<Int>) throws(ExplorationError) -> Int {
        guard let value = node.int, range.contains(value) else {
            throw fail(node, "`\(what)` must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private func fail(_ node: Node?, _ message: String) -> ExplorationError {
        .space(file: file, line: node?.mark.map { $0.line }, message)
    }
}
