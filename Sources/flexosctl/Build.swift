import ArgumentParser
import Conformation
import Foundation
import GuestMachine
import Hosts
import Toolchain

/// `flexosctl build`: compiles an image set from a conformation or an application folder.
struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image set from a conformation (config.yaml) or an application folder.",
        discussion: """
            TARGET is a conformation such as Configs/example-vmept2.yaml, or an application folder such as Guest/Apps/hello (built as one fcalls compartment). Libraries are looked up in Guest/Libraries, Guest/Apps and the folder that holds TARGET. The image set (an ELF and manifest.json) goes to Guest/build/NAME unless --output says otherwise.
            """)

    @Argument(help: "A conformation (.yaml) or an application folder.")
    var target: String

    @Option(help: "The application, when the conformation does not name one with `app:`.")
    var app: String?

    @Option(help: "The folder to write the image set to.")
    var output: String?

    @Option(
        help: ArgumentHelp(
            "Refuse, before compiling, a conformation the libvirt host at URI cannot enforce (see `flexosctl hosts`).",
            valueName: "URI"))
    var host: String?

    @OptionGroup var options: BuildOptions

    func run() throws {
        do {
            var tree = try options.sourceTree()
            // Libraries beside the target are found first (test guests keep theirs there, and a
            // copy being ported there stands in for the tree's library of the same name).
            tree.librarySearchPath.insert(
                URL(fileURLWithPath: target).standardized.deletingLastPathComponent().path, at: 0)
            let plan = try makePlan(tree: tree)
            if let host { try Self.check(plan, canRunOn: host) }
            let options = self.options
            let builder = ImageBuilder(tools: try HostTools.locate(), tree: tree) { options.progress($0) }
            // The linker runs in the build folder: a relative --output is made absolute first.
            let folder =
                output.map { URL(fileURLWithPath: $0).standardized.path } ?? tree.defaultBuildFolder + "/" + plan.name
            let result = try builder.build(plan, into: folder)
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(BuildSummary(result)), as: UTF8.self))
            } else {
                print(
                    "built \(result.folder): \(result.manifest.compartments.count) compartment(s), mechanism \(result.manifest.mechanism.rawValue); run it with `flexosd launch \(result.folder)`"
                )
            }
        } catch let error as ToolchainError {
            throw CleanExit.failure("flexosctl: error: \(error)")
        } catch let error as ConformationError {
            throw CleanExit.failure("flexosctl: error: \(error)")
        }
    }

    /// Ends the build when `uri`'s host cannot enforce the plan's mechanism, naming the
    /// compartments that need it and why the host cannot.
    static func check(_ plan: BuildPlan, canRunOn uri: String) throws {
        let host: HostDescription
        do { host = try HostSurvey.describe(uri) } catch { throw CleanExit.failure("flexosctl: error: \(error)") }
        let mechanism = plan.mechanism.rawValue
        guard let support = host.mechanisms.first(where: { $0.mechanism == mechanism }), support.engine == nil else {
            return
        }
        let names = plan.conformation.compartments.map(\.name).joined(separator: ", ")
        throw CleanExit.failure(
            "flexosctl: error: \(uri) cannot enforce \(mechanism), which compartments \(names) of \(plan.name) need: \(support.reason)"
        )
    }

    private var isConformation: Bool { target.hasSuffix(".yaml") || target.hasSuffix(".yml") }

    private func makePlan(tree: SourceTree) throws -> BuildPlan {
        if isConformation {
            let conformation = try Conformation.load(path: target)
            guard let application = app ?? conformation.application else {
                throw ToolchainError.conformation(
                    ConformationError(
                        file: target, line: nil, "names no application: add `app: NAME` to it or pass --app NAME"))
            }
            return try BuildPlan(conformation: conformation, application: application, tree: tree, file: target)
        }
        let folder = URL(fileURLWithPath: target).standardized
        guard FileManager.default.fileExists(atPath: folder.path + "/library.yaml") else {
            throw ToolchainError.io(
                path: target, "is neither a conformation (.yaml) nor an application folder with a library.yaml")
        }
        let name = app ?? folder.lastPathComponent
        return try BuildPlan(
            conformation: .single(name: name, application: folder.path), application: folder.path, tree: tree,
            file: target)
    }
}

/// What every command that builds image sets takes.
struct BuildOptions: ParsableArguments {
    @Option(help: "The FlexOS repository (found from the current folder by default).")
    var sourceRoot: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print no progress.")
    var quiet = false

    func sourceTree() throws(ToolchainError) -> SourceTree {
        if let sourceRoot { return SourceTree(root: URL(fileURLWithPath: sourceRoot).standardized.path) }
        return try SourceTree.locate()
    }

    /// A progress line on standard error, unless --quiet.
    func progress(_ line: String) {
        if !quiet { FileHandle.standardError.write(Data(("flexosctl: " + line + "\n").utf8)) }
    }
}

/// What `flexosctl build --json` prints.
struct BuildSummary: Encodable {
    let folder: String
    let image: String
    let mechanism: String
    let compartments: [String: [String]]

    init(_ result: BuildResult) {
        folder = result.folder
        image = result.image
        mechanism = result.manifest.mechanism.rawValue
        compartments = Dictionary(uniqueKeysWithValues: result.manifest.compartments.map { ($0.name, $0.libraries) })
    }
}

extension CleanExit {
    /// Ends with `message` on standard error and status 1.
    static func failure(_ message: String) -> Error {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        return ExitCode.failure
    }
}
