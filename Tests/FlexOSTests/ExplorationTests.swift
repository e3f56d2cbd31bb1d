import Conformation
import Foundation
import FoundationXML
import GuestImage
import Testing

@testable import Exploration

/// The poset rules and the lazy walk on synthetic spaces (no VMs), the space file's
/// checks, and one small real exploration with redis-benchmark.
@Suite(.tags(.unit)) struct ExplorationTests {
    static let benchmark = ExplorationSpace.Benchmark(command: "true", figure: "([0-9]+)", unit: "ops/s")

    static func space(
        libraries: [String] = ["a", "b", "c"], mechanisms: [Mechanism] = [.vmept],
        hardening: [[Hardening]] = [[], [.stackProtector], [.boundsChecks], [.stackProtector, .boundsChecks]],
        budget: ExplorationSpace.Budget = .fractionOfBest(0.8)
    ) -> ExplorationSpace {
        ExplorationSpace(
            name: "synthetic", application: libraries[0], libraries: libraries, mechanisms: mechanisms,
            hardeningChoices: hardening, benchmark: benchmark, budget: budget)
    }

    static func configuration(_ mechanism: Mechanism, _ compartments: [([String], [Hardening])]) -> Configuration {
        Configuration(
            mechanism: mechanism,
            compartments: compartments.map { Configuration.Compartment(libraries: $0.0, hardening: $0.1) })
    }

    let order = SafetyOrder(mechanismOrder: ExplorationSpace.defaultMechanismOrder, libraries: ["a", "b", "c"])

    @Test func setPartitionsAreTheBellNumbers() {
        #expect((1...5).map { SetPartitions.of(Array(0..<$0)).count } == [1, 2, 5, 15, 52])
        #expect(Set(SetPartitions.of(["a", "b", "c"]).map { "\($0)" }).count == 5)
    }

    @Test func theSpaceEnumeratesEveryConfigurationOnce() {
        for (mechanisms, hardening) in [
            ([Mechanism.vmept], 4), ([.vmept, .intelMPK], 2), ([.fcalls, .intelMPK, .vmept], 3)
        ] {
            let space = Self.space(
                mechanisms: mechanisms, hardening: Array(Self.space().hardeningChoices.prefix(hardening)))
            let configurations = space.configurations()
            #expect(Set(configurations.map(\.id)).count == configurations.count)
            #expect(
                configurations.count
                    == SpaceParser.configurationCount(libraries: 3, mechanisms: mechanisms.count, hardening: hardening))
        }
        #expect(Self.space().configurations().count == 116)  // 4 + 3 x 16 + 64
    }

    @Test func refiningTheCompartmentsIsSafer() {
        let one = Self.configuration(.fcalls, [(["a", "b", "c"], [])])
        let two = Self.configuration(.vmept, [(["a"], []), (["b", "c"], [])])
        let three = Self.configuration(.vmept, [(["a"], []), (["b"], []), (["c"], [])])
        let otherTwo = Self.configuration(.vmept, [(["a", "b"], []), (["c"], [])])
        #expect(order.isSafer(two, than: one))
        #expect(order.isSafer(three, than: two))
        #expect(!order.isAtLeastAsSafe(one, as: two))
        #expect(!order.isAtLeastAsSafe(two, as: otherTwo) && !order.isAtLeastAsSafe(otherTwo, as: two))
        #expect(order.isAtLeastAsSafe(two, as: two))
    }

    @Test func aBoundaryNeedsAMechanismAtLeastAsStrong() {
        let mpkTwo = Self.configuration(.intelMPK, [(["a"], []), (["b", "c"], [])])
        let vmeptTwo = Self.configuration(.vmept, [(["a"], []), (["b", "c"], [])])
        let mpkThree = Self.configuration(.intelMPK, [(["a"], []), (["b"], []), (["c"], [])])
        #expect(order.isSafer(vmeptTwo, than: mpkTwo))
        #expect(order.isSafer(mpkThree, than: mpkTwo))
        // More boundaries but a weaker mechanism: not comparable.
        #expect(!order.isAtLeastAsSafe(mpkThree, as: vmeptTwo) && !order.isAtLeastAsSafe(vmeptTwo, as: mpkThree))
        // The space file may order mechanisms otherwise.
        let reversed = SafetyOrder(mechanismOrder: [.fcalls, .vmept, .intelMPK], libraries: ["a", "b", "c"])
        #expect(reversed.isSafer(mpkThree, than: vmeptTwo))
    }

    @Test func hardeningComparesLibraryByLibrary() {
        let plain = Self.configuration(.vmept, [(["a"], []), (["b", "c"], [.stackProtector])])
        let more = Self.configuration(
            .vmept, [(["a"], [.boundsChecks]), (["b", "c"], [.stackProtector, .boundsChecks])])
        let other = Self.configuration(.vmept, [(["a"], [.stackProtector]), (["b", "c"], [.boundsChecks])])
        #expect(order.isSafer(more, than: plain))
        #expect(!order.isAtLeastAsSafe(other, as: plain) && !order.isAtLeastAsSafe(plain, as: other))
        // Merging compartments loses a boundary even when it adds hardening.
        let merged = Self.configuration(.fcalls, [(["a", "b", "c"], [.stackProtector, .boundsChecks])])
        #expect(!order.isAtLeastAsSafe(merged, as: plain))
        #expect(order.isSafer(plain, than: Self.configuration(.fcalls, [(["a", "b", "c"], [])])))
    }

    @Test func thePosetHasOneBottomAndOneTopAndAWalkThatRespectsIt() {
        let poset = Explorer(space: Self.space()).poset
        let bottoms = poset.nodes.indices.filter { poset.below[$0].isEmpty }
        let tops = poset.nodes.indices.filter { node in !poset.below.contains { $0.contains(node) } }
        #expect(bottoms.map { poset.nodes[$0].id } == ["fcalls {a b c}"])
        #expect(tops.map { poset.nodes[$0].id } == ["vmept {a: sp,bc}{b: sp,bc}{c: sp,bc}"])
        let position = Dictionary(uniqueKeysWithValues: poset.walk.enumerated().map { ($1, $0) })
        for node in poset.nodes.indices {
            #expect(poset.below[node].allSatisfy { position[$0]! < position[node]! })
            #expect(poset.covers[node].allSatisfy { poset.level[$0] < poset.level[node] })
        }
    }

    /// A figure that falls with every boundary and every hardening: the assumption the
    /// walk relies on. The lazy walk must find what measuring everything finds.
    static func synthetic(_ configuration: Configuration) -> Double {
        let boundaries = configuration.compartments.count - 1
        let hardening = configuration.compartments.reduce(0) { $0 + $1.libraries.count * $1.hardening.count }
        return 100 - Double(boundaries) * 9 - Double(hardening) * 2.5
    }

    @Test func theLazyWalkPrunesAndFindsWhatMeasuringEverythingFinds() throws {
        // At 0.6x every configuration meets the budget: all are measured, the top is the candidate.
        for (budget, prunes) in [
            (ExplorationSpace.Budget.fractionOfBest(0.8), true), (.fractionOfBest(0.9), true),
            (.fractionOfBest(0.6), false), (.absolute(85), true), (.absolute(200), true)
        ] {
            let explorer = Explorer(space: Self.space(budget: budget))
            var measured: [Int] = []
            let lazy = explorer.run { node in
                measured.append(node)
                return BenchmarkResult(figure: Self.synthetic(explorer.poset.nodes[node]))
            }
            #expect(measured.count == lazy.measuredCount && measured.count == lazy.measuredNow)
            #expect(
                prunes ? measured.count < explorer.poset.nodes.count / 2 : measured.count == explorer.poset.nodes.count)
            // Measuring everything: met nodes and the maximal met ones.
            let threshold = lazy.threshold ?? 0
            let met = Set(explorer.poset.nodes.indices.filter { Self.synthetic(explorer.poset.nodes[$0]) >= threshold })
            let maximal = met.filter { node in !met.contains { explorer.poset.below[$0].contains(node) } }
            #expect(Set(lazy.candidates) == maximal, "budget \(budget)")
            for node in explorer.poset.nodes.indices where !lazy.verdicts[node].isMeasured {
                #expect(!met.contains(node), "a pruned node met the budget")
            }
        }
    }

    @Test func aRelativeBudgetFollowsTheBestFigure() {
        let explorer = Explorer(space: Self.space(budget: .fractionOfBest(0.6)))
        let result = explorer.run { node in BenchmarkResult(figure: Self.synthetic(explorer.poset.nodes[node])) }
        #expect(result.best == 100)
        #expect(result.threshold == 60)
        #expect(result.candidates.allSatisfy { result.measurements[$0]!.figure! >= 60 })
    }

    /// Where a mechanism cannot run (intel-mpk without PKU) its configurations are listed as
    /// such, never measured, prune nothing and are no candidates; the rest is walked as usual.
    @Test func configurationsAHostCannotRunAreListedNotMeasured() {
        let explorer = Explorer(space: Self.space(mechanisms: [.intelMPK, .vmept], budget: .fractionOfBest(0.6)))
        let nodes = explorer.poset.nodes
        let cannot = { (node: Int) in nodes[node].mechanism == .intelMPK && nodes[node].compartments.count > 1 }
        var measured: [Int] = []
        let result = explorer.run(unavailable: { cannot($0) ? "no protection keys here" : nil }) { node in
            measured.append(node)
            return BenchmarkResult(figure: Self.synthetic(nodes[node]))
        }
        #expect(!measured.contains(where: cannot) && measured.contains { nodes[$0].mechanism == .vmept })
        #expect(
            nodes.indices.filter(cannot).allSatisfy { result.verdicts[$0] == .unavailable("no protection keys here") })
        #expect(!result.candidates.contains(where: cannot) && !result.candidates.isEmpty)
        let store = try? ResultStore(
            folder: NSTemporaryDirectory() + "flexos-unavailable-\(getpid())", space: explorer.space)
        let rows = store.map { ExplorationReport(result, store: $0).rows } ?? []
        #expect(rows.contains { $0.verdict == "not here" && $0.error == "no protection keys here" })
    }

    @Test func earlierMeasurementsAreNotMeasuredAgainButFailuresAre() {
        let explorer = Explorer(space: Self.space(budget: .absolute(85)))
        var known: [String: BenchmarkResult] = [:]
        var calls = 0
        let first = explorer.run { node in
            calls += 1
            let configuration = explorer.poset.nodes[node]
            let measurement =
                configuration.compartments.count == 2 && configuration.compartments[0].libraries == ["a"]
                ? BenchmarkResult.failed("it did not boot") : BenchmarkResult(figure: Self.synthetic(configuration))
            known[configuration.id] = measurement
            return measurement
        }
        let failed = explorer.poset.nodes.indices.filter { first.verdicts[$0] == .failed }
        #expect(!failed.isEmpty)
        #expect(
            explorer.poset.nodes.indices.allSatisfy { node in
                failed.allSatisfy { !explorer.poset.below[node].contains($0) } || first.verdicts[node] != .met
            })
        var again: [Int] = []
        let second = explorer.run(known: known) { node in
            again.append(node)
            return BenchmarkResult(figure: Self.synthetic(explorer.poset.nodes[node]))
        }
        #expect(Set(again).isSuperset(of: failed))
        #expect(again.allSatisfy { known[explorer.poset.nodes[$0].id]?.figure == nil })
        #expect(second.measuredNow == again.count)
        #expect(calls == first.measuredCount)
    }

    @Test func theReportAndThePictureNameEveryConfiguration() throws {
        let explorer = Explorer(space: Self.space())
        let exploration = explorer.run { node in
            BenchmarkResult(
                figure: Self.synthetic(explorer.poset.nodes[node]), buildSeconds: 1,
                compiledLibraries: node == 0 ? ["a"] : [])
        }
        let store = try ResultStore(folder: NSTemporaryDirectory() + "/flexos-explore-\(getpid())", space: Self.space())
        defer { try? FileManager.default.removeItem(atPath: store.folder) }
        let report = ExplorationReport(exploration, store: store)
        #expect(report.rows.count == 116)
        #expect(report.text.contains("116 configurations; \(exploration.measuredCount) measured"))
        #expect(report.text.contains("candidate c"))
        #expect(report.text.contains("builds cold: 1"))
        let svg = PosetPicture(exploration, store: store).svg
        #expect(svg.components(separatedBy: "<title>").count - 1 == 116)
        #expect(svg.components(separatedBy: "★").count - 2 == exploration.candidates.count)  // and one in the legend
        #expect(try XMLDocument(xmlString: svg).rootElement()?.name == "svg")
    }

    @Test func theKeyValueSpaceHasEightyConfigurationsOrMore() throws {
        let space = try ExplorationSpace.load(path: repositoryRoot + "/Configs/spaces/kvstore.yaml")
        #expect(space.configurations().count >= 80)
        #expect(space.budget == .fractionOfBest(0.8))
        #expect(
            FigureReader(pattern: space.benchmark.figure).figure(
                in: "SET: 40000.00 requests per second, p50=0.5 msec\nGET: 50000.00 requests per second, p50=0.4 msec\n"
            ) == 45000)
    }

    /// A space file is read like a conformation: a FIFO is refused at once, never waited on.
    @Test func aSpaceFileThatIsNotARegularFileIsRefused() throws {
        let fifo = NSTemporaryDirectory() + "/flexos-space-\(getpid()).yaml"
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        #expect(throws: ExplorationError.space(file: fifo, line: nil, "cannot be read: not a regular file")) {
            try ExplorationSpace.load(path: fifo)
        }
    }

    static let validSpace = """
        app: kvstore
        libraries: [net, resp]
        mechanisms: [vmept]
        hardening: [[], [stack-protector]]
        benchmark: {command: "redis-benchmark -p {port}", figure: "GET: ([0-9.]+)"}
        budget: 0.8x
        """

    @Test(arguments: [
        ("shiny: 1\n", "unknown key `shiny`"),
        ("", "has no `app:`"),
        ("mechanisms: [warp]\n", "unknown mechanism `warp`"),
        ("hardening: [[cfi]]\n", "hardening `cfi` is refused"),
        ("hardening: [[stack-protector], [stack-protector]]\n", "listed twice"),
        ("budget: 1.5x\n", "`budget` must be a fraction"),
        ("budget: fast\n", "`budget` must be a fraction"),
        ("benchmark: {command: x, figure: \"[0-9]+\"}\n", "needs a capture group"),
        ("benchmark: {command: x, figure: \"([0-9\"}\n", "is not a regular expression"),
        ("benchmark: {command: x, figure: \"(1)\", runs: 0}\n", "`runs` must be a whole number"),
        ("libraries: [net, net]\n", "named twice"),
        ("libraries: [\"../x\"]\n", "cannot name a library"),
        (
            "libraries: [a, b, c, d, e, f, g, h]\nhardening: [[], [stack-protector], [bounds-checks], [stack-protector, bounds-checks]]\n",
            "at most 5000"
        )
    ])
    func aBadSpaceFileSaysWhatToChange(change: String, message: String) {
        var lines = Self.validSpace.split(separator: "\n").map(String.init)
        for line in change.split(separator: "\n") {
            let key = line.split(separator: ":")[0]
            lines.removeAll { $0.hasPrefix(key + ":") }
            lines.append(String(line))
        }
        if change.isEmpty { lines.removeAll { $0.hasPrefix("app:") } }
        #expect(throws: Never.self) { try ExplorationSpace.parse(yaml: Self.validSpace, name: "s") }
        do {
            _ = try ExplorationSpace.parse(yaml: lines.joined(separator: "\n"), name: "s")
            Issue.record("accepted: \(change)")
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    /// Six real configurations of the kvstore appliance, each built, booted and measured
    /// with redis-benchmark by `flexosctl explore`, as a user runs it; then run again,
    /// which resumes from the results and measures nothing.
    @Test(.tags(.boot, .redis), .beyondTheUnitTier) func aSmallRealExplorationOfTheKeyValueStore() throws {
        _ = try requireKVM()
        let folder = testBuildFolder + "/explore-small"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let space = folder + "/kvstore-small.yaml"
        try """
        app: kvstore
        libraries: [resp, kvstore]
        mechanisms: [vmept]
        hardening: [[], [stack-protector]]
        benchmark:
          ready: redis-cli -h {host} -p {port} PING
          command: redis-benchmark -h {host} -p {port} -q -n 5000 -c 20 -t get
          figure: 'GET: ([0-9.]+) requests per second'
          unit: requests/s
        budget: 1
        """.write(toFile: space, atomically: true, encoding: .utf8)
        let arguments = ["explore", space, "--results", folder + "/results", "--json"]
        let first = try Executables.run("flexosctl", arguments)
        #expect(first.status == 0, "\(first.errors)")
        let report = try JSONDecoder().decode(ExplorationReport.self, from: Data(first.output.utf8))
        #expect(report.configurations == 6 && report.measured == 6 && report.measuredNow == 6)
        #expect(
            report.rows.allSatisfy { $0.verdict == "met" && ($0.figure ?? 0) > 100 },
            "\(report.rows.map { ($0.id, $0.figure, $0.error) })")
        #expect(report.rows.filter(\.candidate).map(\.id) == ["vmept {resp: sp}{kvstore: sp}"])
        for name in [
            "table.txt", "exploration.json", "poset.svg", "results.json", "configs/c006.yaml",
            "builds/c006/manifest.json"
        ] {
            #expect(FileManager.default.fileExists(atPath: folder + "/results/" + name), "\(name)")
        }
        #expect(first.errors.contains("[6/6"))
        let again = try Executables.run("flexosctl", arguments)
        let resumed = try JSONDecoder().decode(ExplorationReport.self, from: Data(again.output.utf8))
        #expect(resumed.measured == 6 && resumed.measuredNow == 0)
        #expect(resumed.rows.map(\.figure) == report.rows.map(\.figure))
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let leftovers = processes.filter { pid in
            (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")).map {
                String(decoding: $0, as: UTF8.self).contains(folder + "/results/builds")
            } ?? false
        }
        #expect(leftovers.isEmpty, "image sets left running: \(leftovers)")
    }

    /// A benchmark that printed 400 MB once put it all in two 2.4 GB JSON files: what is
    /// kept of a benchmark's output is capped, in memory and on disk.
    @Test func aBenchmarkThatFloodsItsOutputIsCapped() throws {
        let path = NSTemporaryDirectory() + "flexos-flood-\(getpid()).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let status = try ShellCommand(
            command: "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo 'GET: 123 requests per second'",
            timeoutSeconds: 30
        ).run(outputPath: path)
        #expect(status == 0)
        let text = ShellCommand.cappedOutput(path)
        #expect(text.utf8.count == 1 << 20)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        #expect(size < (1 << 20) + 100, "\(size) bytes left on disk")
    }

    /// A benchmark that ignores SIGTERM is killed when its time is up, and said to have
    /// timed out (it read "exited with status 9").
    @Test func aBenchmarkThatIgnoresSIGTERMIsReportedAsTimedOut() throws {
        let path = NSTemporaryDirectory() + "flexos-stubborn-\(getpid()).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let status = try ShellCommand(command: "trap '' TERM; sleep 30", timeoutSeconds: 1).run(outputPath: path)
        #expect(
            ShellCommand.describe(status) == "timed out, and was killed after it ignored SIGTERM", "status \(status)")
        #expect(ShellCommand.describe(124) == "timed out")
    }

}
