import Conformation
import Foundation
import GuestMachine
import Monitor
import Testing
import Toolchain

/// Each hardening catches its class of bug: a test guest with that bug, built with the
/// hardening, ends with a report that names the hardening and the code; built without
/// it, the same guest runs to its end and says the bug went unnoticed.
@Suite(.serialized, .tags(.boot), .beyondTheUnitTier) struct HardeningTests {
    /// Boots `target` and returns how it ended and what it printed.
    private func run(_ target: String) throws -> (report: RunReport, console: String) {
        let (report, console) = try boot(try TestImages.build(target).folder)
        return (report, console.text)
    }

    /// The guest, built without hardening, runs to its end: the bug goes unnoticed.
    private func expectUnnoticed(_ guest: String) throws {
        let (report, console) = try run("Tests/Guests/" + guest)
        #expect(report.outcome == "exited", "\(report.message ?? "")")
        #expect(console.contains("went unnoticed"))
    }

    @Test func exclusivityChecksCatchAnOverlappingModification() throws {
        let (report, console) = try run("Tests/Guests/exclusivity-hardened.yaml")
        #expect(report.outcome == "panicked")
        let message = try #require(report.message)
        #expect(message.contains("exclusivity violation (exclusivity-checks): a modification of 0x"))
        #expect(message.contains("overlaps a modification of it"))
        #expect(message.contains("Tests/Guests/exclusivity/main.swift:20"), "\(message)")
        #expect(!console.contains("went unnoticed"))
        try expectUnnoticed("exclusivity")
    }

    @Test func heapChecksCatchAnOverflowNamingTheAllocationSite() throws {
        let message = try #require(try run("Tests/Guests/heapoverflow-hardened.yaml").report.message)
        #expect(message.contains("heap overflow (heap-checks): the block of 100 bytes at 0x"))
        #expect(message.contains("Tests/Guests/heapoverflow/main.swift:12"), "\(message)")
        try expectUnnoticed("heapoverflow")
    }

    @Test func heapChecksCatchADoubleFreeNamingTheAllocationSite() throws {
        let message = try #require(try run("Tests/Guests/doublefree-hardened.yaml").report.message)
        #expect(message.contains("double free (heap-checks)"))
        #expect(message.contains("Tests/Guests/doublefree/main.swift:5"), "\(message)")
        // Without heap-checks the heap still refuses the second free, but cannot say what it was.
        let plain = try #require(try run("Tests/Guests/doublefree").report.message)
        #expect(plain.contains("a double free or a stray pointer") && !plain.contains("heap-checks"))
    }

    @Test func heapChecksCatchAWriteAfterFree() throws {
        let message = try #require(try run("Tests/Guests/useafterfree-hardened.yaml").report.message)
        #expect(message.contains("use after free (heap-checks): freed memory at 0x"))
        #expect(message.contains("Tests/Guests/useafterfree/main.swift:14"), "\(message)")
        try expectUnnoticed("useafterfree")
    }

    @Test func guardPagesTurnAHeapUnderflowIntoAHeapOverflowReport() throws {
        // heapunderflow-hardened.yaml asks for asan, which stands for heap-checks and guard-pages.
        let fault = try #require(try run("Tests/Guests/heapunderflow-hardened.yaml").report.fault)
        #expect(fault.kind == .heapOverflow)
        #expect(fault.summary.hasPrefix("heap overflow in compartment comp1:"))
        #expect(fault.summary.contains("guard page before its heap (hardening guard-pages)"))
        #expect(fault.location?.hasPrefix("Tests/Guests/heapunderflow/main.swift:") == true)
        try expectUnnoticed("heapunderflow")
    }

    @Test func aStackOverflowNamesItsCompartment() throws {
        let fault = try #require(try run("Tests/Guests/stackoverflow").report.fault)
        #expect(fault.summary.hasPrefix("stack overflow in compartment comp1:"))
    }

    @Test func asanStandsForHeapChecksAndGuardPages() throws {
        let conformation = try Conformation.load(path: repositoryRoot + "/Tests/Guests/heapunderflow-hardened.yaml")
        #expect(conformation.compartments[0].hardening == [.heapChecks, .guardPages])
        let manifest = try TestImages.build("Tests/Guests/heapunderflow-hardened.yaml").manifest
        #expect(manifest.compartments[0].hardening == [.heapChecks, .guardPages])
    }

    @Test func exclusivityChecksKeepTheRuntimeCallsAndOtherBuildsDoNot() throws {
        let tools = try HostTools.locate()
        for (target, calls) in [("Tests/Guests/exclusivity-hardened.yaml", true), ("Tests/Guests/exclusivity", false)] {
            // The two builds have folders of their own
            let object = try TestImages.build(target).folder + "/obj/exclusivity.o"
            let undefined = try Executables.runTool(tools.nm, ["--undefined-only", object])
            #expect(undefined.contains("swift_beginAccess") == calls, "\(target)")
        }
    }
}
