import Foundation
import Testing
import Toolchain

@Suite(.tags(.unit)) struct LibraryDescriptorTests {
    @Test func parsesAnExportDeclaration() throws {
        let export = try ExportSignature.parse(
            "lib_func(callback: FlexOSExport, buffer: UnsafeMutablePointer<CChar>, pairs: Dictionary<Int, Int>) -> Int32"
        ).get()
        #expect(export.name == "lib_func")
        #expect(export.parameters.map(\.label) == ["callback", "buffer", "pairs"])
        #expect(
            export.parameters.map(\.type) == ["FlexOSExport", "UnsafeMutablePointer<CChar>", "Dictionary<Int, Int>"])
        #expect(export.result == "Int32")
        #expect(try ExportSignature.parse("empty()").get().parameters.isEmpty)
        #expect(try ExportSignature.parse("empty() -> Void").get().result == nil)
    }

    @Test(arguments: [
        ("lib_func", "is not a declaration"),
        ("lib func()", "is not a valid export name"),
        ("f(a Int)", "must be `label: Type`"),
        ("f(a: Int, b: Int, c: Int, d: Int, e: Int, f: Int, g: Int)", "a gate carries at most 6"),
        ("f() Int", "unexpected `Int`"),
        // Types are pasted into the generated gates: nothing that could close a declaration.
        ("f(a: Int) {}\nfunc evil() {", "must be `label: Type`"),
        ("f(a: Int32\n}) -> Int", "must be `label: Type`"),
        ("f() -> Int\nimport Evil", "is not a result type"),
        ("f(a: \"x\")", "must be `label: Type`")
    ])
    func refusesABadDeclaration(text: String, message: String) {
        switch ExportSignature.parse(text) {
        case .success: Issue.record("\(text) was accepted")
        case .failure(let error): #expect(error.description.contains(message))
        }
    }

    @Test func aLibraryDeclaresTheDevicesItHolds() throws {
        let tree = SourceTree(root: repositoryRoot)
        #expect(try tree.library("net").devices == ["net"])
        #expect(try tree.library("resp").devices.isEmpty)
        let folder = NSTemporaryDirectory() + "flexos-devices-\(getpid())/disky"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "name: disky\ndevices: [disk]\n".write(toFile: folder + "/library.yaml", atomically: true, encoding: .utf8)
        try "".write(toFile: folder + "/disky.swift", atomically: true, encoding: .utf8)
        #expect { try LibraryDescriptor.load(directory: folder) } throws: {
            "\($0)".contains("the monitor provides: net")
        }
    }

    @Test func loadsTheExampleLibrary() throws {
        let library = try SourceTree(root: repositoryRoot).library("flexosexample")
        #expect(library.uses == ["exampleaudit"])
        #expect(library.exports.map(\.name) == ["lib_func"])
        #expect(library.symbol(of: library.exports[0]) == "flexosexample_lib_func")
        #expect(library.sources.allSatisfy { $0.hasSuffix(".swift") })
    }

    @Test func namesTheFoldersItSearchedForAnUnknownLibrary() {
        #expect { try SourceTree(root: repositoryRoot).library("nosuchlibrary") } throws: { error in
            "\(error)".contains(
                "unknown library nosuchlibrary: no folder nosuchlibrary with a library.yaml in \(repositoryRoot)/Guest/Libraries"
            )
        }
    }
}
