import Foundation
import Testing
import Toolchain

@testable import Porting

/// flexos-port on copies of the talk's example before porting (Tests/Porting/example),
/// on the hand-ported libraries, and on a library that hands over heap memory.
@Suite(.serialized, .tags(.boot), .beyondTheUnitTier) struct PortingTests {
    /// A fresh copy of the unported example, and the folder that holds it.
    private func unportedCopy() throws -> String {
        let folder = testBuildFolder + "/porting-example"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: testBuildFolder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/Tests/Porting/example", toPath: folder)
        return folder
    }

    private func port(_ library: String, in folder: String, _ extra: [String] = []) throws -> Executables.Result {
        try Executables.run("flexos-port", [folder + "/" + library, "--libraries", folder] + extra)
    }

    private func plan(_ library: String, in folder: String) throws -> PortingPlan {
        let sources = try ["example", "flexosexample", "exampleaudit"].map {
            try LibrarySource(folder: folder + "/" + $0)
        }
        return PortingAnalyzer(target: sources.first { $0.name == library }!, others: sources).plan()
    }

    @Test func itProposesTheExportsAndUsesOfTheHandPort() throws {
        let folder = try unportedCopy()
        for (library, handPorted) in [
            ("example", "Guest/Apps/example"), ("flexosexample", "Guest/Libraries/flexosexample"),
            ("exampleaudit", "Guest/Libraries/exampleaudit")
        ] {
            let hand = try LibraryDescriptor.load(directory: repositoryRoot + "/" + handPorted)
            let plan = try plan(library, in: folder)
            #expect(plan.proposedExports == hand.exports.map(\.description), "\(library)")
            #expect(plan.proposedUses == hand.uses, "\(library)")
            #expect(plan.currentExports.isEmpty && plan.needsAttention)
        }
    }

    @Test func itFlagsTheThreePiecesOfPrivateDataWithTheirFixes() throws {
        let plan = try plan("example", in: try unportedCopy())
        let flagged = Dictionary(uniqueKeysWithValues: plan.sharedData.map { ($0.name, $0) })
        #expect(flagged.keys.sorted() == ["stackBuffer", "stackInt", "staticBuffer"])
        #expect(
            flagged["staticBuffer"]?.kind == .global && flagged["staticBuffer"]?.fix.contains(".data_shared") == true)
        #expect(flagged["stackInt"]?.kind == .stack && flagged["stackInt"]?.fix.contains("shared stack") == true)
        #expect(flagged["stackBuffer"]?.kind == .stack && flagged["stackBuffer"]?.line == 18)
        #expect(
            plan.sharedData.allSatisfy {
                $0.passedTo == "flexosexample.lib_func" && $0.automatic && $0.file.hasSuffix("example/main.swift")
            })
        #expect(plan.calls.map(\.line) == [17])
    }

    @Test func writeRewritesTheCallsAndLeavesEveryOtherByte() throws {
        let folder = try unportedCopy()
        let before = try port("flexosexample", in: folder)
        #expect(before.status == 1)
        #expect(before.output.contains("lib_func.swift:9  record(1)\n      -> exampleaudit.record(1)"))
        #expect(try port("flexosexample", in: folder, ["--write"]).status == 0)
        let rewritten = try String(contentsOfFile: folder + "/flexosexample/lib_func.swift", encoding: .utf8)
        #expect(
            rewritten == """
                import FlexOS

                /// Writes to the four arguments it is given, records the call and calls back.
                @_cdecl("flexosexample_lib_func")
                public func lib_func(_ callback: FlexOSExport, _ staticBuffer: UnsafeMutablePointer<CChar>,
                                     _ stackInt: UnsafeMutablePointer<Int32>, _ stackBuffer: UnsafeMutablePointer<CChar>) {
                    staticBuffer.pointee = 0
                    stackBuffer.pointee = 0
                    stackInt.pointee = 42
                    _ = exampleaudit.record(1)
                    callback.call(84)
                }

                """)
        let again = try port("flexosexample", in: folder)
        #expect(again.status == 0 && again.output.contains("ported: nothing to change"))
    }

    /// The whole example ported by the helper alone builds and runs in two VMs.
    @Test func theRewrittenExampleRunsInVmept2() throws {
        let folder = try unportedCopy()
        for library in ["example", "flexosexample", "exampleaudit"] {
            let result = try port(library, in: folder, ["--write", "--json"])
            #expect(result.status == 0, "\(result.errors)")
            _ = try JSONDecoder().decode(PortingPlan.self, from: Data(result.output.utf8))
        }
        let main = try String(contentsOfFile: folder + "/example/main.swift", encoding: .utf8)
        #expect(main.contains("@section(\".data_shared\") @used\nnonisolated(unsafe) var staticBuffer"))
        #expect(
            main.contains(
                "SharedMemory.withUnsafeMutablePointer(to: &stackInt) { stackInt in flexosexample.lib_func(Exports.callback,"
            ))
        let built = try Executables.run(
            "flexosctl", ["build", folder + "/vmept2.yaml", "--output", folder + "/build", "-q"])
        #expect(built.status == 0, "\(built.errors)")
        let (report, console) = try boot(folder + "/build")
        #expect(report.outcome == "exited", "\(report.message ?? "")")
        #expect(console.text.contains("callback called!"))
        #expect(console.text.contains("lib_func set stack_int to 42 and cleared static_buf: yes"))
    }

    /// example_skipgate declares the library's export by hand (`@_extern(c, ...)`) and calls
    /// it: the gate the talk's debugging story skips. The helper names it, and its rewrite
    /// calls the gate and runs in two VMs.
    @Test func aHandDeclaredExportIsAGateSkipped() throws {
        let folder = testBuildFolder + "/porting-skipgate"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for library in ["Guest/Apps/example_skipgate", "Guest/Libraries/flexosexample", "Guest/Libraries/exampleaudit"]
        {
            try FileManager.default.copyItem(
                atPath: repositoryRoot + "/" + library,
                toPath: folder + "/" + URL(fileURLWithPath: library).lastPathComponent)
        }
        let before = try port("example_skipgate", in: folder)
        #expect(before.status == 1)
        #expect(
            before.output.contains(
                "main.swift:10  libFuncWithoutGate is declared by hand as flexosexample_lib_func, the export of gate flexosexample.lib_func: its calls skip the gate"
            ), "\(before.output)")
        #expect(
            before.output.contains(
                "main.swift:18  libFuncWithoutGate(Exports.callback, buffers, stackInt, buffers + 32)\n      -> flexosexample.lib_func(Exports.callback, buffers, stackInt, buffers + 32)"
            ), "\(before.output)")
        #expect(
            before.output.contains("uses: flexosexample\n")
                && before.output.contains("callback(value: Int32)   used by example_skipgate (as a callback)"),
            "\(before.output)")
        #expect(try port("example_skipgate", in: folder, ["--write"]).status == 0)
        let main = try String(contentsOfFile: folder + "/example_skipgate/main.swift", encoding: .utf8)
        #expect(!main.contains("@_extern") && !main.contains("libFuncWithoutGate"), "\(main)")
        let descriptor = try LibraryDescriptor.load(directory: folder + "/example_skipgate")
        #expect(descriptor.uses == ["flexosexample"] && descriptor.exports.map(\.name) == ["callback"])
        try String(contentsOfFile: repositoryRoot + "/Configs/example-skipgate-vmept2.yaml", encoding: .utf8).write(
            toFile: folder + "/vmept2.yaml", atomically: true, encoding: .utf8)
        let built = try Executables.run(
            "flexosctl", ["build", folder + "/vmept2.yaml", "--output", folder + "/build", "-q"])
        #expect(built.status == 0, "\(built.errors)")
        let (report, console) = try boot(folder + "/build")
        #expect(report.outcome == "exited" && report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text.contains("callback called!"))
    }

    @Test(arguments: [
        "Guest/Apps/example", "Guest/Libraries/flexosexample", "Guest/Libraries/exampleaudit",
        "Guest/Apps/kvstore", "Guest/Libraries/resp", "Guest/Libraries/net"
    ])
    func aPortedLibraryNeedsNothing(_ library: String) throws {
        let result = try Executables.run("flexos-port", [repositoryRoot + "/" + library])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("ported: nothing to change"))
    }

    /// `let a = [[[...1...]]]` took swift-syntax's parser 20 s at depth 26, doubling per
    /// level, and crashed it at depth 1000: the helper refuses such nesting before parsing.
    @Test(arguments: [26, 1000]) func deeplyNestedSourceIsRefusedBeforeParsing(_ depth: Int) throws {
        let folder = testBuildFolder + "/porting-nested"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/nested", withIntermediateDirectories: true)
        try "name: nested\ndescription: test\n".write(
            toFile: folder + "/nested/library.yaml", atomically: true, encoding: .utf8)
        let nested = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        try "let a = \(nested)\n".write(toFile: folder + "/nested/nested.swift", atomically: true, encoding: .utf8)
        let result = try port("nested", in: folder)
        #expect(result.status == 1)
        #expect(
            result.errors.contains("brackets nest \(depth) deep, more than the 20 the helper reads"), "\(result.errors)"
        )
    }

    @Test func privateHeapMemoryIsFlaggedForAFixByHand() throws {
        let folder = testBuildFolder + "/porting-heap"
        try? FileManager.default.removeItem(atPath: folder)
        for (name, source) in [
            (
                "giver",
                "public func give() {\n    let block = UnsafeMutablePointer<UInt8>.allocate(capacity: 8)\n    take(block)\n}\n"
            ),
            ("taker", "public func take(_ block: UnsafeMutablePointer<UInt8>) {\n    block.pointee = 1\n}\n")
        ] {
            try FileManager.default.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: true)
            try "name: \(name)\ndescription: test\n".write(
                toFile: folder + "/\(name)/library.yaml", atomically: true, encoding: .utf8)
            try ("import FlexOS\n\n" + source).write(
                toFile: folder + "/\(name)/\(name).swift", atomically: true, encoding: .utf8)
        }
        let result = try port("giver", in: folder, ["--write"])
        #expect(result.status == 1)
        #expect(
            result.output.contains(
                "giver.swift:5  block (private heap) passed to taker.take: shared heap: allocate it with SharedMemory.allocate(T.self, count:) [fix by hand]"
            ), "\(result.output)")
    }
}
