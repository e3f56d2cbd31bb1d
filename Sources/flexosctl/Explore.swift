import ArgumentParser
import Exploration
import Foundation
import GuestImage
import GuestMachine
import KVM
import Toolchain

/// `flexosctl explore SPACE.yaml`: the safest configurations within a performance budget.
struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Find the safest configurations of an application that meet a performance budget.",
        discussion: """
            SPACE.yaml names the application, the libraries whose placement varies, the mechanisms and hardening sets to try, a benchmark (a command run against each launched image set, and a regular expression that reads its figure) and a budget (0.8x: within 80% of the best figure; or a figure). See Configs/spaces/kvstore.yaml.

            Configurations are ordered by safety: A is at least as safe as B when every boundary of B is a boundary of A with a mechanism at least as strong (fcalls < intel-mpk < vmept unless the space says otherwise), and every library is hardened in A with at least what it has in B. The walk starts from the least safe and measures a configuration only if nothing below it missed the budget. The candidates are the configurations that meet the budget with nothing safer that does.

            Results go to --results (default Guest/build/explore/SPACE): results.json, each measured configuration's config, build and log, the table (table.txt), exploration.json and poset.svg. Run the same command again to resume an interrupted exploration; a finished one is reported again without measuring. Library objects are cached across configurations, so only the first build of each library and hardening compiles.
            """)

    @Argument(help: "The exploration space (.yaml).")
    var space: String

    @Option(help: "The folder for results (default: Guest/build/explore/NAME).")
    var results: String?

    @Option(help: "The flexosd that boots the image sets (default: the one beside flexosctl).")
    var flexosd: String?

    @Flag(help: "List the configurations in walk order and measure nothing.")
    var list = false

    @OptionGroup var options: BuildOptions

    func run() throws {
        do {
            let space = try ExplorationSpace.load(path: self.space)
            let tree = try options.sourceTree()
            let explorer = Explorer(space: space)
            if list { return printList(explorer) }
            let store = try ResultStore(
                folder: results.map { URL(fileURLWithPath: $0).standardized.path } ?? tree.defaultBuildFolder
                    + "/explore/" + space.name, space: space)
            var (known, note) = try store.load()
            if let note { progress(note) }
            let benchmark = ImageSetBenchmark(
                space: space, store: store, builder: ImageBuilder(tools: try HostTools.locate(), tree: tree),
                flexosd: flexosdPath)
            let started = Date()
            let unavailable = Explore.unavailableMechanisms()
            let exploration = try explorer.run(
                known: known,
                unavailable: { node in
                    let configuration = explorer.poset.nodes[node]
                    return configuration.compartments.count > 1 ? unavailable[configuration.mechanism] : nil
                },
                step: { position, node, what in
                    let seconds = Int(Date().timeIntervalSince(started))
                    let doing =
                        switch what {
                        case .pruned: "pruned"
                        case .measuredBefore: "measured before"
                        case .measuring: "building and measuring"
                        case .unavailable(let reason): "not measured: \(reason)"
                        }
                    progress(
                        "[\(position + 1)/\(explorer.poset.nodes.count) \(seconds / 60)m\(seconds % 60)s] \(store.name(node)) \(explorer.poset.nodes[node].id): \(doing)"
                    )
                },
                measure: { node throws(ExplorationError) in
                    let measurement = benchmark.measure(explorer.poset.nodes[node], node: node)
                    progress(
                        "    "
                            + (measurement.figure.map { "\(Int($0)) \(space.benchmark.unit)" }
                                ?? "failed: \(measurement.error ?? "?")")
                            + String(format: " (build %.1f s, ", measurement.buildSeconds)
                            + (measurement.compiledLibraries.isEmpty
                                ? "cached)" : "compiled " + measurement.compiledLibraries.joined(separator: ", ") + ")")
                    )
                    try store.record(measurement, id: explorer.poset.nodes[node].id, into: &known)
                    return measurement
                })
            try report(exploration, store: store)
        } catch let error as ExplorationError {
            throw CleanExit.failure("flexosctl: error: \(error)")
        } catch let error as ToolchainError {
            throw CleanExit.failure("flexosctl: error: \(error)")
        }
    }

    /// The mechanisms this host cannot run, and why: those that need protection keys where
    /// KVM offers none (intel-mpk; flexosd refuses to launch it there).
    static func unavailableMechanisms() -> [Mechanism: String] {
        guard let hypervisor = try? Hypervisor(), !hypervisor.offersProtectionKeys else { return [:] }
        let keyed = Mechanism.allCases.filter(\.isolation.needsProtectionKeys)
        return Dictionary(uniqueKeysWithValues: keyed.map { ($0, "this host's KVM offers no protection keys") })
    }

    /// flexosd beside this flexosctl (both come from the same `swift build`).
    private var flexosdPath: String {
        if let flexosd { return URL(fileURLWithPath: flexosd).standardized.path }
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return own.deletingLastPathComponent().appendingPathComponent("flexosd").path
    }

    private func report(_ exploration: Exploration, store: ResultStore) throws {
        let report = ExplorationReport(exploration, store: store)
        let files = [("table.txt", report.text + "\n"), ("poset.svg", PosetPicture(exploration, store: store).svg)]
        for (name, text) in files {
            do { try text.write(toFile: store.folder + "/" + name, atomically: true, encoding: .utf8) } catch {
                throw ExplorationError.results(
                    path: store.folder + "/" + name, "cannot write: \(error.localizedDescription)")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(report)
        try data.write(to: URL(fileURLWithPath: store.folder + "/exploration.json"))
        if options.json { return print(String(decoding: data, as: UTF8.self)) }
        print(report.text)
        print("results in \(store.folder) (table.txt, exploration.json, poset.svg)")
    }

    private func printList(_ explorer: Explorer) {
        let poset = explorer.poset
        for node in poset.walk {
            print("level \(poset.level[node])  \(poset.nodes[node].id)")
        }
        print("\(poset.nodes.count) configurations")
    }

    private func progress(_ line: String) { options.progress(line) }
}
