import Foundation
import GuestImage
import Testing

@testable import Toolchain

/// What a build produces, read back from the build folder.
@Suite(.tags(.boot), .beyondTheUnitTier) struct ToolchainTests {
    func undefinedSymbols(_ object: String) throws -> [String] {
        let tools = try HostTools.locate()
        let result = try Executables.runTool(tools.nm, ["--undefined-only", "--format=just-symbols", object])
        return result.split(separator: "\n").map(String.init)
    }

    @Test func eachLibraryGetsItsCompartmentsHardening() throws {
        let result = try TestImages.build("Configs/example-vmept2.yaml")
        // comp2 (flexosexample) has stack-protector; comp1 (example, exampleaudit) has none.
        #expect(try undefinedSymbols(result.folder + "/obj/flexosexample.o").contains("__stack_chk_fail"))
        #expect(try !undefinedSymbols(result.folder + "/obj/example.o").contains("__stack_chk_fail"))
        #expect(try !undefinedSymbols(result.folder + "/obj/exampleaudit.o").contains("__stack_chk_fail"))
        #expect(result.manifest.compartments.map(\.hardening) == [[], [.stackProtector, .boundsChecks]])
    }

    @Test func librariesGetPageAlignedRegionsOfTheirOwn() throws {
        let manifest = try TestImages.build("Configs/example-vmept3.yaml").manifest
        let regions =
            manifest.libraries.flatMap { library in library.regions.map { (library.name, $0) } }
            + manifest.runtime.map { ("runtime", $0) }
        for (owner, region) in regions {
            #expect(region.start % GuestLayout.pageSize == 0, "\(owner) \(region.name)")
            for (other, otherRegion) in regions where other != owner {
                let pages = region.start..<alignUp(region.range.upperBound, GuestLayout.pageSize)
                #expect(
                    !pages.overlaps(otherRegion.range),
                    "\(owner) \(region.name) shares a page with \(other) \(otherRegion.name)")
            }
        }
        #expect(manifest.libraries.map(\.compartment) == ["comp1", "comp2", "comp3"])
        #expect(
            manifest.exports.map { "\($0.library).\($0.name)" } == [
                "example.callback", "flexosexample.lib_func", "exampleaudit.record"
            ])
        #expect(manifest.shared.count == 1)
    }

    @Test func gatesAreGeneratedIntoTheBuildFolderPerMechanism() throws {
        let fcalls = try TestImages.build("Configs/example-fcalls.yaml").folder
        let vmept = try TestImages.build("Configs/example-vmept2.yaml").folder
        let fcallsScript = try String(contentsOfFile: fcalls + "/generated/link.ld", encoding: .utf8)
        let vmeptGlue = try String(contentsOfFile: vmept + "/generated/glue.swift", encoding: .utf8)
        // fcalls: the gate is the function itself. vmept: the gate is a stub that makes an RPC.
        #expect(fcallsScript.contains("flexos_gate_flexosexample_lib_func = flexosexample_lib_func;"))
        #expect(
            !(try String(contentsOfFile: fcalls + "/generated/glue.swift", encoding: .utf8)).contains(
                "@_cdecl(\"flexos_gate_"))
        #expect(vmeptGlue.contains("@_cdecl(\"flexos_gate_flexosexample_lib_func\")"))
        #expect(vmeptGlue.contains("Gates.call(export: 1"))
        let interface = try String(contentsOfFile: vmept + "/generated/example-gates.swift", encoding: .utf8)
        #expect(interface.contains("enum flexosexample {"))
        #expect(interface.contains("static let callback = FlexOSExport(index: 0)"))
    }

    @Test func onlyExportsStayGlobalInALibrary() throws {
        let folder = try TestImages.build("Configs/example-vmept2.yaml").folder
        let tools = try HostTools.locate()
        let globals = try Executables.runTool(
            tools.nm, ["--defined-only", "--extern-only", "--format=just-symbols", folder + "/obj/flexosexample.o"]
        )
        .split(separator: "\n").map(String.init)
        let runtime = Set(
            try String(contentsOfFile: folder + "/obj/flexosexample.exports", encoding: .utf8).split(separator: "\n")
                .map(String.init))
        #expect(globals.contains("flexosexample_lib_func"))
        // Everything else global is one of the runtime's own symbols (Embedded Swift's weak copies).
        #expect(globals.allSatisfy { $0 == "flexosexample_lib_func" || runtime.contains($0) })
        #expect(!globals.contains { $0.contains("13flexosexample") && $0 != "flexosexample_lib_func" })
    }

    @Test func aMissingExportIsReported() throws {
        let folder = NSTemporaryDirectory() + "flexos-missing-export-\(getpid())/liar"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "name: liar\nexports:\n  - \"promised(value: Int64) -> Int64\"\n".write(
            toFile: folder + "/library.yaml", atomically: true, encoding: .utf8)
        try "import FlexOS\n@_cdecl(\"app_main\") public func appMain() -> Int32 { 0 }\n".write(
            toFile: folder + "/main.swift", atomically: true, encoding: .utf8)
        let result = try Executables.run("flexosctl", ["build", folder, "--output", folder + "-build"])
        #expect(result.status == 1)
        #expect(
            result.errors.contains(
                "library liar declares export promised in its library.yaml but defines no function liar_promised: give the function @_cdecl(\"liar_promised\")"
            ))
    }

    @Test func anIntelMPKBuildRefusesALibraryThatHidesWRPKRU() throws {
        let output = NSTemporaryDirectory() + "flexos-pkruhider-\(getpid())"
        let refused = try Executables.run("flexosctl", ["build", "Tests/Guests/pkruhider-mpk.yaml", "--output", output])
        #expect(refused.status == 1)
        #expect(
            refused.errors.contains("library pkruhider holds the bytes of WRPKRU (0f 01 ef) at offset"),
            "\(refused.errors)")
        #expect(refused.errors.contains("outside the gates"))
        #expect(!FileManager.default.fileExists(atPath: output + "/pkruhider-mpk.elf"))
        // The same code under fcalls has no keys to protect, and example and kvstore hold no such bytes.
        #expect(
            try Executables.run(
                "flexosctl", ["build", "Tests/Guests/pkruhider-fcalls.yaml", "--output", output + "-fcalls"]
            ).status == 0)
    }

    @Test func theScanFindsUnalignedPKRUWritersAndNotTheirLookAlikes() {
        func scan(_ bytes: [UInt8]) -> [String] {
            bytes.withUnsafeBytes { ProtectionKeyScan.occurrences(in: $0).map { "\($0.offset) \($0.instruction)" } }
        }
        #expect(scan([0x48, 0xB9, 0x00, 0x0F, 0x01, 0xEF, 0x00]) == ["3 WRPKRU (0f 01 ef)"])
        #expect(scan([0x0F, 0xAE, 0x2F]) == ["0 XRSTOR (0f ae /5)"])  // xrstor (%rdi)
        #expect(scan([0x48, 0x0F, 0xAE, 0x6F, 0x10]) == ["1 XRSTOR (0f ae /5)"])  // xrstor64 0x10(%rdi)
        #expect(scan([0x0F, 0xC7, 0x1F]) == ["0 XRSTORS (0f c7 /3)"])  // xrstors (%rdi)
        #expect(scan([0x0F, 0xAE, 0xE8, 0x0F, 0x01, 0xEE, 0x0F, 0x01]).isEmpty)  // lfence, rdpkru, a cut-off tail
    }
}

/// The IR rewrite behind exclusivity-checks: the empty access functions become
/// declarations, and a shape it does not know is refused rather than built unchecked.
@Suite(.tags(.unit)) struct ExclusivityBuildTests {
    static let emitted = """
        define weak_odr protected void @swift_beginAccess(ptr %0, ptr %1, i64 %2, ptr %3) #2 !dbg !78 {
        entry:
          ret void, !dbg !83
        }
          call void @swift_beginAccess(ptr %1, ptr %access-scratch, i64 0, ptr null) #2, !dbg !77
        define weak_odr protected void @swift_endAccess(ptr %0) #2 {
        entry:
          ret void
        }
        """

    @Test func theEmptyAccessFunctionsBecomeDeclarations() throws {
        let rewritten = try ExclusivityBuild.keepAccessCalls(Self.emitted, path: "x.ll")
        #expect(rewritten.contains("declare void @swift_beginAccess(ptr, ptr, i64, ptr)"))
        #expect(rewritten.contains("declare void @swift_endAccess(ptr)"))
        #expect(rewritten.contains("call void @swift_beginAccess(ptr %1"))
        #expect(!rewritten.contains("define weak_odr"))
    }

    @Test func anAccessFunctionWithABodyIsRefused() {
        let changed = Self.emitted.replacingOccurrences(
            of: "  ret void, !dbg !83", with: "  call void @check()\n  ret void")
        #expect(throws: ToolchainError.self) { try ExclusivityBuild.keepAccessCalls(changed, path: "x.ll") }
    }
}
