import CFlexOSABI
import Foundation
import GuestImage
import GuestMachine
import Monitor
import Testing

/// The example on real VMs: fcalls, vmept with two and three compartments, and the
/// debugging story.
@Suite(.tags(.boot), .beyondTheUnitTier) struct CompartmentTests {
    static let exampleOutput = [
        "audit: 1 call(s) recorded", "callback called!", "lib_func set stack_int to 42 and cleared static_buf: yes"
    ]

    @Test func theExampleRunsUnderFcallsInOneVM() throws {
        let (report, console) = try boot(try TestImages.build("Configs/example-fcalls.yaml").folder)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(report.compartments.map(\.name) == ["comp1+comp2"])
        for line in Self.exampleOutput { #expect(console.text.contains(line)) }
        // Gates are direct calls: no VM sleeps or wakes another.
        #expect(report.compartments[0].hypercalls["wake"] == nil)
    }

    @Test func theExampleRunsInTwoVMs() throws {
        let (report, console) = try boot(try TestImages.build("Configs/example-vmept2.yaml").folder)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(report.compartments.map(\.name) == ["comp1", "comp2"])
        // The audit library lives with the application: it prints from comp1, called back from comp2.
        #expect(console.text(of: "comp1") == Self.exampleOutput.joined(separator: "\n") + "\n")
        #expect(console.text(of: "comp2").isEmpty)
    }

    @Test func theExampleRunsInThreeVMs() throws {
        let (report, console) = try boot(try TestImages.build("Configs/example-vmept3.yaml").folder)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(report.compartments.map(\.name) == ["comp1", "comp2", "comp3"])
        #expect(console.text(of: "comp3") == "audit: 1 call(s) recorded\n")
        #expect(
            console.text(of: "comp1") == "callback called!\nlib_func set stack_int to 42 and cleared static_buf: yes\n")
    }

    @Test func eachVMMapsOnlyItsOwnLibrariesAndTheSharedArea() throws {
        let result = try TestImages.build("Configs/example-vmept2.yaml")
        let image = try ELFImage(path: result.image)
        let symbols = Symbolizer(image: image)
        let secret = try #require(
            symbols.symbols.first {
                $0.displayName == "example.staticAppSecret : (Swift.UInt64, Swift.UInt64, Swift.UInt64, Swift.UInt64)"
            })
        let shared = try #require(
            symbols.symbols.first { !$0.isFunction && $0.displayName.hasPrefix("example.staticBuffer") })
        let library = try #require(symbols.symbol(named: "flexosexample_lib_func"))

        vmLock.lock()
        defer { vmLock.unlock() }
        let run = try ImageSetRun(
            try ImageSet.open(result.folder), options: LaunchOptions(), hypervisor: try requireKVM(),
            console: CapturedConsole(), devices: deviceProviders)
        let report = run.wait(timeout: 20)
        #expect(report.exitStatus == 0)
        // The application's private buffer: its own compartment only.
        #expect(run.mapping(of: secret.address, inCompartment: "comp1") == .readWrite)
        #expect(run.mapping(of: secret.address, inCompartment: "comp2") == nil)
        // The library's code: its compartment only.
        #expect(run.mapping(of: library.address, inCompartment: "comp2") == .readExecute)
        #expect(run.mapping(of: library.address, inCompartment: "comp1") == nil)
        // Shared data: both, at the same address.
        #expect(run.mapping(of: shared.address, inCompartment: "comp1") == .readWrite)
        #expect(run.mapping(of: shared.address, inCompartment: "comp2") == .readWrite)
        #expect(GuestLayout.shared.contains(shared.address))
    }

    @Test func eachPairsGateChannelsAreMappedInThatPairOnly() throws {
        vmLock.lock()
        defer { vmLock.unlock() }
        let run = try ImageSetRun(
            try ImageSet.open(try TestImages.build("Configs/example-vmept3.yaml").folder), options: LaunchOptions(),
            hypervisor: try requireKVM(), console: CapturedConsole(), devices: deviceProviders)
        #expect(run.wait(timeout: 20).exitStatus == 0)
        let block = run.layout.gateBlock.lowerBound
        let channels12 = block + flexos_gate_channel_offset(0, 1)
        let channels23 = block + flexos_gate_channel_offset(1, 2)
        #expect(run.mapping(of: channels12, inCompartment: "comp1") == .readWrite)
        #expect(run.mapping(of: channels12, inCompartment: "comp2") == .readWrite)
        #expect(run.mapping(of: channels12, inCompartment: "comp3") == nil)
        #expect(run.mapping(of: channels23, inCompartment: "comp1") == nil)
        // A compartment's state: its own to write, the others' to read (are they asleep?).
        let state1 = block + flexos_gate_state_offset(0)
        #expect(run.mapping(of: state1, inCompartment: "comp1") == .readWrite)
        #expect(run.mapping(of: state1, inCompartment: "comp3") == .readOnly)
        #expect(run.mapping(of: block, inCompartment: "comp2") == .readOnly)
        #expect(run.layout.region(containing: channels12)?.name == "the gate block (channels comp1 <-> comp2)")
    }

    @Test func dataLeftOnThePrivateStackFaultsInTheLibraryWithTheGateNamed() throws {
        let (report, _) = try boot(try TestImages.build("Configs/example-unshared-vmept2.yaml").folder)
        #expect(report.exitStatus == 139)
        let fault = try #require(report.fault)
        #expect(fault.compartment == "comp2")
        #expect(fault.library == "flexosexample")
        #expect(fault.function?.hasPrefix("flexosexample.libFunc(") == true)
        #expect(fault.location == "Guest/Libraries/flexosexample/lib_func.swift:10")
        #expect(fault.addressRegion == "the private stack of compartment comp1, not mapped in compartment comp2")
        #expect(fault.gate == "argument 3 (stackInt) of gate flexosexample.lib_func, called from compartment comp1")
        let rendered = fault.render()
        #expect(rendered.contains("via gate: argument 3 (stackInt) of gate flexosexample.lib_func"))
    }

    @Test func aCallThatSkipsItsGateIsReported() throws {
        let (report, _) = try boot(try TestImages.build("Configs/example-skipgate-vmept2.yaml").folder)
        #expect(report.exitStatus == 139)
        let fault = try #require(report.fault)
        #expect(fault.compartment == "comp1")
        #expect(fault.kind == .instructionFetch)
        #expect(fault.function == "flexosexample_lib_func")
        #expect(
            fault.addressRegion
                == "section .text.flexosexample of library flexosexample (compartment comp2), not mapped in compartment comp1"
        )
        #expect(
            fault.notes.contains {
                $0.contains("example_skipgate.appMain()") && $0.hasSuffix("directly: a call that skipped its gate")
            })
        #expect(fault.backtrace.dropFirst().first?.location == "Guest/Apps/example_skipgate/main.swift:18")
    }

    @Test func theSharedHeapCarriesDataBetweenVMsAndIsReused() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/sharedheap-vmept2.yaml").folder)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(
            console.text(of: "comp1") == "shared heap: 131072000 bytes filled by the library, 0 bytes still in use\n")
    }

    @Test func intelMPKIsRefusedAtLaunchWithAReason() throws {
        let result = try TestImages.build("Tests/Guests/example-mpk.yaml")
        #expect(result.manifest.mechanism == .intelMPK)
        vmLock.lock()
        defer { vmLock.unlock() }
        #expect {
            try ImageSetRun(
                try ImageSet.open(result.folder), options: LaunchOptions(), hypervisor: try requireKVM(),
                console: CapturedConsole(), devices: deviceProviders)
        } throws: { error in
            "\(error)".contains(
                "cannot launch this intel-mpk image set here: this host's KVM offers no protection keys")
                && "\(error)".contains("--engine qemu")
        }
    }
}
