import ArgumentParser
import Foundation
import Porting
import Toolchain

/// `flexos-port LIBRARY-FOLDER`: the talk's porting script, for Swift libraries.
@main
struct FlexOSPort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexos-port",
        abstract: "Find a library's calls into other libraries and the data they share, and write the gates.",
        discussion: """
            Reads the library's Swift sources and those of every library under --libraries (default: Guest/Libraries and Guest/Apps of the repository, and the folder that holds LIBRARY-FOLDER). Reports the `uses` and `exports` library.yaml should have (a function another library calls, or one this library hands to another as a callback), the direct calls into other libraries that become gate calls (`otherlib.fn(...)`), function parameters that become FlexOSExport callbacks, and memory handed to another library that its compartment cannot reach, with the fix that applies: a shared static (@section(".data_shared")), the shared stack (SharedMemory.withUnsafeMutablePointer), or the shared heap (SharedMemory.allocate).

            --write applies the edits it can make mechanically and updates library.yaml; every other byte of the sources stays as it was. Exit status 1 when something needs attention (usable in CI), 0 when the library is ported.
            """)

    @Argument(help: "The library's folder (with its library.yaml).")
    var library: String

    @Option(help: "A folder of library folders to read the other libraries from (repeatable).")
    var libraries: [String] = []

    @Flag(help: "Apply the edits and update library.yaml.")
    var write = false

    @Flag(help: "Print the plan as JSON.")
    var json = false

    func run() throws {
        do {
            let folder = URL(fileURLWithPath: library).standardized.path
            let target = try LibrarySource(folder: folder)
            let others = try otherLibraries(besides: folder)
            let plan = PortingAnalyzer(target: target, others: others).plan()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(plan), as: UTF8.self))
            } else {
                print(plan.report)
            }
            if write {
                try Porter(plan: plan).write()
                if !json {
                    print("  written: \(plan.editCount) edit(s)" + (plan.manifestChanges ? " and library.yaml" : ""))
                }
            }
            if plan.needsAttention && !(write && plan.sharedData.allSatisfy(\.automatic)) { throw ExitCode.failure }
        } catch let error as PortingError {
            FileHandle.standardError.write(Data("flexos-port: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Every library folder under the search folders, but the target.
    private func otherLibraries(besides target: String) throws(PortingError) -> [LibrarySource] {
        var folders = libraries.map { URL(fileURLWithPath: $0).standardized.path }
        if folders.isEmpty, let tree = try? SourceTree.locate() { folders = tree.librarySearchPath }
        folders.append(URL(fileURLWithPath: target).deletingLastPathComponent().path)
        var seen = Set<String>()
        var result: [LibrarySource] = []
        for folder in folders {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
                let path = folder + "/" + name
                guard path != target, seen.insert(path).inserted,
                    FileManager.default.fileExists(atPath: path + "/" + LibraryDescriptor.fileName)
                else { continue }
                result.append(try LibrarySource(folder: path))
            }
        }
        return result
    }
}
