import CFlexOSABI
import CKVM
import Conformation
import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM
import Testing

@testable import Monitor

/// What an attacker hands the monitor: numbers near 2^64 in guest memory, images and
/// manifests, sizes and durations, FIFOs instead of files, names that would inject code.
/// Each of these once killed flexosd; each must now be refused or reported.
@Suite(.tags(.boot), .beyondTheUnitTier) struct HostileInputTests {
    // MARK: - Sizes and durations from command lines and requests

    @Test func durationsThatDoNotFitARunAreRefused() {
        for text in ["1e308", "1e308s", "inf", "nan", "0", "-1s", "400d"] {
            #expect(CommandLineValues.seconds(text) == nil, "\(text)")
        }
        #expect(CommandLineValues.seconds("10s") == 10)
        #expect(CommandLineValues.seconds("1.5") == 1.5)
        #expect(!CommandLineValues.isValidDuration(1e308))
    }

    @Test func sizesNear2To64AreReportedNotTrappedOn() {
        #expect(formatBytes(.max).hasSuffix("GiB"))
        #expect(CommandLineValues.byteCount("18446744073709551615K") == nil)
    }

    @Test func hugeOrUnalignedMemorySizesAreRefused() throws {
        let set = try ImageSet.open(try TestImages.build("Guest/Apps/hello").folder)
        func refusal(_ memory: UInt64, _ shared: UInt64) -> String {
            do {
                _ = try ImageSetLayout(image: set.image, manifest: set.manifest, memory: memory, sharedMemory: shared)
                return "accepted"
            } catch { return error.description }
        }
        #expect(refusal(.max, 16 << 20).contains("is too large: a compartment can have at most"))
        #expect(refusal(64 << 20, .max).contains("shared area holds at most"))
        #expect(refusal(64 << 20, 2 << 30).contains("shared area holds at most"))
        #expect(refusal((64 << 20) + 1, 16 << 20).contains("memory size of 67108865 bytes is not a multiple"))
        #expect(refusal(64 << 20, (16 << 20) + 100).contains("shared memory size of 16777316 bytes is not a multiple"))
        #expect(refusal(64 << 20, 16 << 20) == "accepted")
        // A compartment of its own VM may have up to 16 GiB (10 million keys fit in 4 GiB) ...
        #expect(refusal(4 << 30, 16 << 20) == "accepted")
        #expect(refusal(17 << 30, 16 << 20).contains("at most 16 GiB under fcalls"))
        // ... those sharing a VM under intel-mpk 1 GiB each (their gates carry the stack addresses).
        let keyed = try ImageSet.open(try TestImages.build("Configs/example-mpk2.yaml").folder)
        do {
            _ = try ImageSetLayout(
                image: keyed.image, manifest: keyed.manifest, memory: 2 << 30, sharedMemory: 16 << 20)
            Issue.record("2 GiB per compartment accepted under intel-mpk")
        } catch {
            #expect(error.description.contains("at most 1 GiB under intel-mpk"), "\(error)")
        }
        #expect(throws: KVMError.badMemorySize(4097)) { try GuestMemory(name: "flexos-test", size: 4097) }
    }

    // MARK: - Manifests

    /// A copy of the hello image set whose manifest was changed by `edit`.
    func editedManifest(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let built = try TestImages.build("Guest/Apps/hello")
        let folder = NSTemporaryDirectory() + "flexos-manifest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: built.image, toPath: folder + "/" + URL(fileURLWithPath: built.image).lastPathComponent)
        var manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: built.folder + "/manifest.json"))) as! [String: Any]
        edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: folder + "/manifest.json"))
        return folder
    }

    func launchRefusal(_ path: String) -> String {
        do {
            _ = try ImageSet.open(path)
            return "accepted"
        } catch { return error.description }
    }

    @Test func manifestRegionsThatWrapOrLeaveGuestMemoryAreRefused() throws {
        for (start, size) in [
            (UInt64(0x40_0000), UInt64.max), (UInt64.max - 4095, UInt64(8192)), (UInt64(1) << 47, UInt64(4096))
        ] {
            let folder = try editedManifest { manifest in
                var runtime = manifest["runtime"] as! [[String: Any]]
                runtime[0]["start"] = NSNumber(value: start)
                runtime[0]["size"] = NSNumber(value: size)
                manifest["runtime"] = runtime
            }
            #expect(
                launchRefusal(folder).contains("lies outside the image and shared areas"), "start \(start) size \(size)"
            )
        }
    }

    @Test func aManifestImageMustStayInItsFolder() throws {
        for image in ["../hello.elf", "/etc/shadow", "sub/hello.elf", ".."] {
            let folder = try editedManifest { $0["image"] = image }
            #expect(launchRefusal(folder).contains("must be a file name in the manifest's own folder"), "\(image)")
        }
    }

    @Test func manifestNamesAreChecked() throws {
        for name in ["a b", "a/b", "", ".hidden", String(repeating: "x", count: 65), "line\nbreak"] {
            let folder = try editedManifest { $0["name"] = name }
            #expect(launchRefusal(folder).contains("cannot name an image set"), "\(name.debugDescription)")
        }
        let folder = try editedManifest { manifest in
            var compartments = manifest["compartments"] as! [[String: Any]]
            compartments[0]["name"] = "comp\nevil"
            manifest["compartments"] = compartments
        }
        #expect(launchRefusal(folder).contains("cannot name a compartment"))
    }

    @Test func manifestHardeningIsAnOptionThisBuildKnows() throws {
        let folder = try editedManifest { manifest in
            var compartments = manifest["compartments"] as! [[String: Any]]
            compartments[0]["hardening"] = ["heap-checks", "made-up"]
            manifest["compartments"] = compartments
        }
        let refusal = launchRefusal(folder)
        #expect(refusal.contains("at compartments[0].hardening[1]") && refusal.contains("made-up"), "\(refusal)")
    }

    @Test func manifestDevicesAreChecked() throws {
        let cases: [([[String: String]], String)] = [
            ([["kind": "disk", "library": "hello"]], "is not one the monitor provides"),
            ([["kind": "net", "library": "nosuchlibrary"]], "belongs to unknown library"),
            ([["kind": "net", "library": "hello"], ["kind": "net", "library": "hello"]], "more than one network device")
        ]
        for (devices, message) in cases {
            let folder = try editedManifest { $0["devices"] = devices }
            #expect(launchRefusal(folder).contains(message), "\(devices)")
        }
    }

    @Test func aBareELFWithAnOddFileNameGetsAValidName() throws {
        let folder = NSTemporaryDirectory() + "flexos-bare-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/odd name!.elf"
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: try TestImages.build("Guest/Apps/hello").image, toPath: path)
        #expect(try ImageSet.open(path).manifest.name == "odd-name-")
    }

    // MARK: - Files that are not files

    @Test func fifosAreRefusedAtOnceNotWaitedOn() throws {
        let folder = NSTemporaryDirectory() + "flexos-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(mkfifo(folder + "/guest.elf", 0o600) == 0)
        #expect(mkfifo(folder + "/manifest.json", 0o600) == 0)
        let started = Date()
        #expect(launchRefusal(folder + "/guest.elf").contains("not a regular file"))
        #expect(launchRefusal(folder).contains("not a regular file"))
        #expect(launchRefusal(folder + "/manifest.json").contains("not a regular file"))
        #expect(Date().timeIntervalSince(started) < 5)
    }

    // MARK: - Conformations

    @Test func aHugeConformationIsRefusedQuickly() throws {
        let many = "compartments:\n" + (0..<20_000).map { "- c\($0):\n  mechanism: vmept\n" }.joined()
        let started = Date()
        #expect(throws: ConformationError.self) { try Conformation.parse(yaml: many, name: "many") }
        do { _ = try Conformation.parse(yaml: many, name: "many") } catch {
            #expect(error.description.contains("20000 compartments; at most 16"))
        }
        let huge = String(repeating: "#", count: Conformation.maxFileSize + 1)
        do { _ = try Conformation.parse(yaml: huge, name: "huge") } catch {
            #expect(error.description.contains("is larger than"))
        }
        #expect(Date().timeIntervalSince(started) < 20)
    }

    @Test func namesThatWouldInjectCodeAreRefused() {
        let injected = "compartments:\n- \"comp1\\n}\\nfunc evil() {\":\n  mechanism: vmept\n  default: True\n"
        #expect(throws: ConformationError.self) { try Conformation.parse(yaml: injected, name: "x") }
        let library =
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\nlibraries:\n- \"lib\\nevil\": comp1\n"
        #expect(throws: ConformationError.self) { try Conformation.parse(yaml: library, name: "x") }
        let good = "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n"
        #expect(throws: ConformationError.self) { try Conformation.parse(yaml: good, name: "bad\nname") }
        #expect((try? Conformation.parse(yaml: good, name: "good")) != nil)
    }

    // MARK: - Values the guest controls

    @Test func aPanicLineNoSourceFileHasIsDroppedNotTrappedOn() throws {
        let memory = try GuestMemory(name: "flexos-test-hypercall", size: 1 << 20)
        let range: Range<UInt64> = 0x10_0000..<0x20_0000
        let space = GuestAddressSpace(
            slots: [.init(range: range, memory: memory, offset: 0)],
            mapped: [GuestRegion(kind: .heap, range: range, permissions: .readWrite)])
        let handler = HypercallHandler(
            space: space, console: ConsoleRing(host: memory.base, bytes: 4096), compartmentCount: 1
        ) { _ in }
        try space.pointer(0x10_1000, length: 5, writable: true).copyMemory(from: Array("hello".utf8), byteCount: 5)
        for line in [UInt64(1) << 63, .max] {
            try space.write(
                flexos_hc_panic(
                    message: 0x10_1000, message_length: 5, file: 0, file_length: 0, line: line, code_address: 0),
                at: 0x10_2000)
            #expect(handler.handle(.panic, argument: 0x10_2000) == .panic(message: "hello", file: nil, line: nil))
        }
        #expect(handler.handle(.exit, argument: .max - 3) != .resume)
    }

    @Test func faultAnalysisSurvivesSmashedStacksAndFramePointers() throws {
        vmLock.lock()
        defer { vmLock.unlock() }
        let hypervisor = try requireKVM()
        let set = try ImageSet.open(try TestImages.build("Guest/Apps/hello").folder)
        let layout = try ImageSetLayout(
            image: set.image, manifest: set.manifest, memory: 4 << 20, sharedMemory: 1 << 20)
        let shared = try GuestMemory(name: "flexos-test-shared", size: 1 << 20)
        let machine = try CompartmentMachine(
            hypervisor: hypervisor, setName: "t", imageSet: layout, index: 0, image: set.image, shared: shared,
            applicationCompartment: 0)
        let analyzer = FaultAnalyzer(
            compartment: layout.compartments[0], imageSet: layout, pageTables: machine.pageTables,
            space: machine.addressSpace, symbolizer: Symbolizer(image: set.image), exports: [])
        let top = layout.compartments[0].stack.upperBound - 16
        // A `ret` through a smashed stack: the words at RSP and at the frame pointer are 0.
        try machine.addressSpace.write(UInt64(0), at: top)
        try machine.addressSpace.write(UInt64(0), at: top + 8)
        let heap = layout.compartments[0].heap.lowerBound
        for rip in [set.image.entry, set.image.entry + 1, heap, 0, .max] {
            for rbp in [UInt64.max - 7, .max, top, 0] {
                for cr2 in [VCPUState.noPageFault, 0, 0xDEAD_0000, .max] {
                    var regs = kvm_regs()
                    var sregs = kvm_sregs()
                    regs.rip = rip
                    regs.rsp = top
                    regs.rbp = rbp
                    sregs.cr2 = cr2
                    let report = analyzer.analyze(registers: regs, specialRegisters: sregs)
                    #expect(!report.summary.isEmpty)
                }
            }
        }
    }

    // MARK: - Hostile guests on real VMs

    @Test func aGuestPanickingWithAHugeLineIsReported() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/panicline").folder)
        #expect(report.outcome == "panicked")
        #expect(report.exitStatus == 134)
        #expect(report.message?.contains("hostile panic (at hostile.swift)") == true)
    }

    @Test func aGateRequestForAnUnknownExportIsRefusedBackToItsCaller() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/badgate-vmept2.yaml").folder)
        #expect(console.text(of: "comp1").contains("honest call: 42"))
        #expect(!console.text.contains("the bogus call returned"))
        // The caller, whose request it was, ends; the callee was not made to panic.
        #expect(report.outcome == "panicked")
        #expect(
            report.message?.contains("guest panic in compartment comp1: a gate call was refused") == true,
            "\(report.message ?? "")")
    }

    @Test func readingAddressZeroIsAPageFault() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/nullread").folder)
        #expect(report.outcome == "faulted")
        #expect(report.fault?.kind == .pageFault, "\(report.message ?? "")")
        #expect(report.fault?.address == 0)
    }

    @Test func aCorruptConsoleRingIsRefused() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/consolesmash").folder)
        #expect(console.text.contains("smashing the console ring"))
        #expect(report.fault?.kind == .badHypercall)
        #expect(report.fault?.summary == "the console ring is corrupt (head and tail disagree)")
    }

    @Test func aStormOfRandomHypercallsEndsInAReport() throws {
        // Well-formed calls in random order (40-80 µs each), a million or twenty seconds' worth, then garbage.
        let (report, console) = try boot(try TestImages.build("Tests/Guests/hypercallstorm").folder, timeout: 600)
        let served = console.text.split(separator: "\n").first { $0.hasSuffix("well-formed hypercalls served") }
        #expect(
            served.flatMap { Int($0.split(separator: " ")[0]) }.map { $0 >= 100_000 } == true,
            "\(report.outcome): \(report.message ?? "")")
        // Garbage ends the run the way the guest's last call deserves, never the monitor.
        #expect(
            ["faulted", "panicked", "exited"].contains(report.outcome), "\(report.outcome): \(report.message ?? "")")
        if let fault = report.fault {
            #expect(fault.kind == .badHypercall || fault.kind == .pageFault, "\(fault.summary)")
        }
    }

    @Test func aFloodOfWakesCostsTheSleeperNothing() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/wakeflood-vmept2.yaml").folder)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text(of: "comp1").contains("after the flood: 100"))
    }

    @Test func aJumpToANonCanonicalAddressIsReported() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/oddjump").folder)
        #expect(report.exitStatus == 139)
        #expect(report.fault?.summary.contains("non-canonical") == true)
        #expect(report.fault?.location == "Tests/Guests/oddjump/main.swift:9")
    }

    @Test func aWaitOfOneNanosecondIsShort() throws {
        vmLock.lock()
        defer { vmLock.unlock() }
        let vm = try requireKVM().createVirtualMachine()
        let control = try RunControl(vcpus: [try vm.createVCPU()], names: ["comp1"])
        // 100 waits of 1 ns each; rounded up to whole milliseconds they took 100 ms or more.
        let started = monotonicNanoseconds()
        for _ in 0..<100 { _ = control.wait(0, timeout: 1) }
        #expect(monotonicNanoseconds() - started < 50_000_000)
    }

    @Test func aForbiddenSystemCallOnAVCPUThreadEndsItAndIsReported() throws {
        vmLock.lock()
        defer { vmLock.unlock() }
        var options = LaunchOptions()
        // Once confined, the thread asks for something its filter does not allow.
        options.onConfinedVCPUThread = { _ = getppid() }
        let run = try ImageSetRun(
            try ImageSet.open(try TestImages.build("Guest/Apps/hello").folder), options: options,
            hypervisor: try requireKVM(), console: CapturedConsole(), devices: deviceProviders)
        let report = run.wait(timeout: 20)
        #expect(report.outcome == "failed")
        #expect(
            report.message?.contains("made system call 110 (getppid), which its seccomp filter forbids") == true,
            "\(report.message ?? "")")
    }
}
