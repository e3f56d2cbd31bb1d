import Foundation
import GuestImage

/// What a build produced.
public struct BuildResult: Sendable {
    public let folder: String
    public let image: String
    public let manifest: ImageManifest
    /// The libraries this build compiled; the others came from the cache.
    public let compiledLibraries: [String]
}

/// Builds an image set: compiles the runtime (cached across builds) and each library
/// with its compartment's hardening, generates gates and the link layout for the
/// conformation, links one static ELF, and writes the manifest beside it.
public struct ImageBuilder: Sendable {
    public let tools: HostTools
    public let tree: SourceTree
    /// Where the runtime cache lives (shared by every image set).
    public let cacheFolder: String
    /// Receives one line per build step.
    public let progress: @Sendable (String) -> Void

    static let swiftFlags = [
        "-target", "x86_64-unknown-none-elf", "-enable-experimental-feature", "Embedded",
        "-enable-experimental-feature", "Extern", "-wmo", "-parse-as-library", "-g"
    ]

    public init(
        tools: HostTools, tree: SourceTree, cacheFolder: String? = nil,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.tools = tools
        self.tree = tree
        self.cacheFolder = cacheFolder ?? tree.defaultBuildFolder + "/.runtime"
        self.progress = progress
    }

    /// Debug information names files relative to the source tree: reports read
    /// Guest/Libraries/x/y.swift:10, and builds do not depend on where the tree lives.
    var debugPrefixMap: [String] {
        ["-debug-prefix-map", tree.root + "/=", "-debug-prefix-map", cacheFolder + "/=.runtime/"]
    }

    /// Below this much free space on the build folder's disk, a failed step is reported as
    /// the disk being full.
    static let nearlyFullBytes: UInt64 = 64 << 20

    public func build(_ plan: BuildPlan, into folder: String) throws(ToolchainError) -> BuildResult {
        do { return try buildSteps(plan, into: folder) } catch {
            // A full disk makes each tool fail its own way (a Foundation error, a linker that
            // crashes writing its output): say what it is, and leave no half-written image.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            where name.hasPrefix(plan.name + ".elf") {
                try? FileManager.default.removeItem(atPath: folder + "/" + name)
            }
            if let free = ImageBuilder.freeBytes(folder), free < ImageBuilder.nearlyFullBytes {
                throw .diskFull(folder: folder, freeBytes: free, step: error)
            }
            throw error
        }
    }

    /// Free bytes of the file system that holds `path` (statvfs), for an unprivileged user.
    static func freeBytes(_ path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    private func buildSteps(_ plan: BuildPlan, into folder: String) throws(ToolchainError) -> BuildResult {
        let objects = folder + "/obj"
        let generated = folder + "/generated"
        // A build folder holds what this build wrote and nothing an earlier one left.
        for stale in [objects, generated] { try? FileManager.default.removeItem(atPath: stale) }
        try makeFolder(objects)
        try makeFolder(generated)
        let steps = 4 + plan.libraries.count
        var step = 0
        func report(_ text: String) {
            step += 1
            progress("[\(step)/\(steps)] \(text)")
        }

        let runtime = try RuntimeBuild(builder: self).build(report: report)
        let generator = GateGenerator(plan: plan)
        try write(generator.glue(), to: generated + "/glue.swift")
        report("gates for \(plan.mechanism.rawValue): \(plan.exports.count) export(s)")
        try compile(
            sources: [generated + "/glue.swift"], module: "FlexOSGlue",
            flags: ["-O", "-Xfrontend", "-disable-stack-protector"], runtime: runtime, output: objects + "/glue.o",
            step: "compiling the generated gates")

        var libraryObjects: [String: String] = [:]
        var compiled: [String] = []
        for library in plan.libraries {
            let interface = generated + "/\(library.name)-gates.swift"
            try write(generator.interface(for: library), to: interface)
            let flags = plan.hardeningFlags(for: library)
            let built = try buildLibrary(
                library, plan: plan, interface: interface, flags: flags, runtime: runtime, objects: objects)
            let hardening = plan.compartment(of: library).hardening.map(\.rawValue)
            report(
                "\(library.name) in \(plan.compartment(of: library).name), hardening: \(hardening.isEmpty ? "none" : hardening.joined(separator: ", ")): \(built.compiled ? "compiled" : "cached")"
            )
            libraryObjects[library.name] = built.object
            if built.compiled { compiled.append(library.name) }
        }

        let image = folder + "/\(plan.name).elf"
        report("linking \(image)")
        var linked = libraryObjects.mapValues { [($0 as NSString).lastPathComponent] }
        let gateObjects = try plan.gates.buildObjects(
            with: self, into: &linked, generated: generated, objects: objects)
        let script = generator.linkerScript(
            runtimeObjects: ["runtime.o", "support.o", "glue.o"], libraryObjects: linked,
            unicodeTables: tools.unicodeDataTables, gateObjects: gateObjects)
        try write(script, to: generated + "/link.ld")
        try copy(runtime.object, to: objects + "/runtime.o")
        try copy(runtime.support, to: objects + "/support.o")
        let inputs = ["runtime.o", "support.o", "glue.o"] + gateObjects + plan.libraries.flatMap { linked[$0.name]! }
        try CommandRunner().run(
            [
                tools.linker, "-static", "-nostdlib", "-z", "norelro", "-z", "max-page-size=4096",
                "--no-undefined", "-T", generated + "/link.ld", "-o", image
            ] + inputs + [tools.unicodeDataTables],
            step: "linking \(plan.name)", in: objects)

        try plan.gates.check(image: image)
        if !plan.mechanism.isolation.vmPerCompartment {
            try copy(
                try ShimBuild(builder: self).build(report: { progress("  " + $0) }),
                to: folder + "/" + ShimBuild.fileName)
        }
        report("manifest \(folder)/\(ImageManifest.fileName)")
        let manifest = try ManifestWriter(plan: plan).manifest(image: image)
        do { try manifest.write(path: folder + "/" + ImageManifest.fileName) } catch {
            throw ToolchainError.io(path: folder + "/" + ImageManifest.fileName, "\(error)")
        }
        return BuildResult(folder: folder, image: image, manifest: manifest, compiledLibraries: compiled)
    }

    /// Compiles `library` with its gates interface, localises every symbol but its
    /// exports, and checks that it defines each export. Returns the object to link,
    /// `obj/<library>.o`, with its keep list beside it: the same two files whether the
    /// object was compiled now or came from the cache.
    ///
    /// Embedded Swift emits into every importing module its own weak copies of the
    /// runtime's functions and variables. Those stay global, so that the linker binds
    /// them to the runtime's definitions (mapped in every compartment, one state per VM);
    /// everything else of the library becomes local to it.
    ///
    /// Objects are cached by content in the cache folder, shared by every image set: a
    /// library compiled with the same sources, gates interface, flags and exports is
    /// compiled once, whichever conformation or output folder asks for it again.
    private func buildLibrary(
        _ library: LibraryDescriptor, plan: BuildPlan, interface: String, flags: [String], runtime: RuntimeBuild.Output,
        objects: String
    ) throws(ToolchainError) -> (object: String, compiled: Bool) {
        let exported =
            library.exports.map { library.symbol(of: $0) } + (library.name == plan.application.name ? ["app_main"] : [])
        var fingerprint = Fingerprint()
        fingerprint.add(files: library.sources)
        // Its contents, not where this build put it
        fingerprint.add(FileManager.default.contents(atPath: interface) ?? Data())
        for part in [ImageBuilder.libraryCacheFormat, tools.swiftc] + ImageBuilder.swiftFlags + debugPrefixMap + flags
            + exported + [runtime.moduleFolder]
        { fingerprint.add(part) }
        let cached = cacheFolder + "/libraries/\(fingerprint.hex)/\(library.name).o"
        let local = objects + "/\(library.name).o"
        let compiled = !FileManager.default.fileExists(atPath: cached)
        if compiled {
            try compileLibrary(
                library, interface: interface, flags: flags, exported: exported, runtime: runtime, into: cached)
        }
        try copy(cached, to: local)
        try copy(ImageBuilder.keepList(of: cached), to: objects + "/\(library.name).exports")
        let defined = Set(
            try CommandRunner().run(
                [tools.nm, "--defined-only", "--extern-only", "--format=just-symbols", local],
                step: "listing the symbols of \(library.name)"
            )
            .split(separator: "\n").map(String.init))
        for export in library.exports where !defined.contains(library.symbol(of: export)) {
            throw ToolchainError.exportMissing(
                library: library.name, export: export.name, symbol: library.symbol(of: export))
        }
        if library.name == plan.application.name && !defined.contains("app_main") {
            throw ToolchainError.exportMissing(
                library: library.name, export: "the application's entry point", symbol: "app_main")
        }
        return (local, compiled)
    }

    /// The symbols a cached library object keeps global, beside it in the cache.
    static func keepList(of cached: String) -> String { (cached as NSString).deletingPathExtension + ".exports" }

    /// Bumped whenever what a cached library object holds changes.
    static let libraryCacheFormat = "library-cache-2"

    /// Compiles and localises `library` into the cache entry `cached`, written under a
    /// private name and renamed into place, so concurrent builds never see half an entry.
    /// The compiler's own output is an intermediate beside the entry, never in a build folder.
    private func compileLibrary(
        _ library: LibraryDescriptor, interface: String, flags: [String], exported: [String],
        runtime: RuntimeBuild.Output, into cached: String
    ) throws(ToolchainError) {
        let keep = ImageBuilder.keepList(of: cached)
        let staging = cached + ".staging-\(getpid())"
        let object = staging + ".unlocalised.o"
        try makeFolder((cached as NSString).deletingLastPathComponent)
        defer { try? FileManager.default.removeItem(atPath: object) }
        try compile(
            sources: library.sources + [interface], module: library.name, flags: flags, runtime: runtime,
            output: object, step: "compiling library \(library.name)")
        let runtimeSymbols = (try? String(contentsOfFile: runtime.symbols, encoding: .utf8)) ?? ""
        try write(exported.joined(separator: "\n") + "\n" + runtimeSymbols, to: keep)
        try CommandRunner().run(
            [tools.objcopy, "--keep-global-symbols=" + keep, object, staging],
            step: "localising the symbols of \(library.name)")
        if rename(staging, cached) != 0 {
            try? FileManager.default.removeItem(atPath: staging)
            throw ToolchainError.io(
                path: cached, "cannot move the compiled library into the cache: \(String(cString: strerror(errno)))")
        }
    }

    /// Assembles the intel-mpk gates and each compartment's saved-stack word; the word goes
    /// with the compartment's first library, into its keyed data. Returns the gates' objects.
    func assemble(_ source: String, to object: String) throws(ToolchainError) {
        try CommandRunner().run(
            [tools.clang, "-target", "x86_64-unknown-none-elf", "-c", source, "-o", object],
            step: "assembling \(source)")
    }

    func compile(
        sources: [String], module: String, flags: [String], runtime: RuntimeBuild.Output, output: String, step: String
    ) throws(ToolchainError) {
        let arguments =
            [tools.swiftc] + ImageBuilder.swiftFlags + debugPrefixMap + flags + [
                "-module-name", module, "-I", runtime.moduleFolder, "-I", tree.runtimeInclude, "-Xcc",
                "-I" + tree.abiInclude
            ]
        if flags.contains(ExclusivityBuild.checked) {
            return try ExclusivityBuild(tools: tools).compile(
                arguments: arguments, sources: sources, output: output, step: step)
        }
        try CommandRunner().run(arguments + ["-c", "-o", output] + sources, step: step)
    }
}

func makeFolder(_ path: String) throws(ToolchainError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw ToolchainError.io(path: path, "cannot create the folder: \(error.localizedDescription)")
    }
}

func write(_ text: String, to path: String) throws(ToolchainError) {
    do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
        throw ToolchainError.io(path: path, "cannot write: \(error.localizedDescription)")
    }
}

func copy(_ source: String, to destination: String) throws(ToolchainError) {
    try? FileManager.default.removeItem(atPath: destination)
    do { try FileManager.default.copyItem(atPath: source, toPath: destination) } catch {
        throw ToolchainError.io(path: destination, "cannot copy \(source): \(error.localizedDescription)")
    }
}
