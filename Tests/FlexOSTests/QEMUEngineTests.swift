import Foundation
import GuestImage
import GuestMachine
import Monitor
import Testing

@testable import QEMUEngine

/// Runs `target` under the QEMU engine (qemu-system-x86_64 -accel tcg -cpu max and the
/// ring-0 shim). Fails, never skips, where QEMU is missing: scripts/setup.sh installs it.
func bootUnderQEMU(_ target: String, timeout: Double = 60) throws -> (report: RunReport, console: CapturedConsole) {
    let console = CapturedConsole()
    let set = try ImageSet.open(try TestImages.build(target).folder)
    return (try QEMUEngine().run(set, options: LaunchOptions(), console: console, timeout: timeout), console)
}

/// The same guests as on KVM, under emulation: the same console, exit codes and reports.
@Suite(.serialized, .tags(.qemu), .beyondTheUnitTier) struct QEMUEngineTests {
    @Test func helloRunsUnderQEMU() throws {
        let (report, console) = try bootUnderQEMU("Guest/Apps/hello")
        #expect(report.outcome == "exited" && report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text.contains("Hello from FlexOS, Embedded Swift in ring 3!"))
        #expect(console.text.contains("add up to 385"))
    }

    @Test func theExampleRunsUnderQEMUInFcalls() throws {
        let (report, console) = try bootUnderQEMU("Configs/example-fcalls.yaml")
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text.contains("callback called!"))
    }

    @Test func aFaultUnderQEMUIsReportedAsOnKVM() throws {
        let (report, _) = try bootUnderQEMU("Tests/Guests/fault")
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.kind == .pageFault)
        #expect(fault.address == 0xDEAD_0000)
        #expect(fault.function?.hasPrefix("fault.touchUnmapped(Swift.UInt64)") == true)
        #expect(fault.location?.hasSuffix("Tests/Guests/fault/main.swift:9") == true)
        #expect(fault.backtrace.contains { $0.function.hasPrefix("app_main") })
        #expect(fault.notes.contains { $0.contains("exception vector 14") })
    }

    /// A fault whose RIP lies in the engine's own ring-0 shim was reported as the guest's
    /// code faulting: the report now says it is the shim's. (No guest input is known to
    /// fault the shim, so the shim's report is given here as the control port carries it.)
    @Test func aFaultInsideTheShimIsNamedAsTheShims() throws {
        let set = try ImageSet.open(try TestImages.build("Tests/Guests/fault").folder)
        let prepared = try PreparedMemory(imageSet: set, options: LaunchOptions())
        let rip = PreparedMemory.shimRange.lowerBound + 0x40
        let numbers: [UInt64] = [14, 0, rip, rip + 0x1000, 0x2, 0xDEAD_0000, 0, 0x8] + [UInt64](repeating: 0, count: 15)
        let line = "fault " + numbers.map { "0x" + String($0, radix: 16) }.joined(separator: " ") + "\n"
        guard case .faulted(let report) = prepared.end(from: ShimReport(Array(line.utf8)), timedOut: nil, errors: "")
        else {
            Issue.record("the shim's fault was not read as a fault")
            return
        }
        #expect(
            report.summary.hasPrefix(
                "a fault inside the QEMU engine's ring-0 shim (Guest/Ring0/shim.c) at 0x\(String(rip, radix: 16)), offset 0x40 of the shim"
            ), "\(report.summary)")
    }

    @Test func aPanicAndAPrivilegedInstructionUnderQEMU() throws {
        let panic = try bootUnderQEMU("Tests/Guests/panicline").report
        #expect(
            panic.outcome == "panicked" && panic.message?.contains("hostile panic") == true, "\(panic.message ?? "")")
        let privileged = try bootUnderQEMU("Tests/Guests/privileged").report
        #expect(privileged.fault?.kind == .privilegedInstruction, "\(privileged.message ?? "")")
    }

    /// One implementation serves the hypercalls of both engines (the KVM engine's exits and
    /// the calls the shim forwards to flexosd): the same guests end the same way, with the
    /// same console, status, fault kind and summary, in the same function and called from the
    /// same lines. (Only the instruction differs: a store to the hypercall window on KVM,
    /// `syscall` under QEMU, a few lines apart in flexos_guest.h.)
    @Test(arguments: ["Guest/Apps/hello", "Tests/Guests/panic", "Tests/Guests/consolesmash"])
    func aHypercallCaseEndsAlikeOnBothEngines(_ target: String) throws {
        let (kvm, kvmConsole) = try boot(try TestImages.build(target).folder)
        let (qemu, qemuConsole) = try bootUnderQEMU(target)
        #expect(qemu.outcome == kvm.outcome)
        #expect(qemu.exitStatus == kvm.exitStatus)
        #expect(qemu.message?.split(separator: "\n").first == kvm.message?.split(separator: "\n").first)
        #expect(qemu.fault?.kind == kvm.fault?.kind)
        #expect(qemu.fault?.summary == kvm.fault?.summary)
        #expect(qemu.fault?.backtrace.first?.function.hasPrefix("flexos_hypercall") == kvm.fault.map { _ in true })
        #expect(qemu.fault?.backtrace.dropFirst().map(\.location) == kvm.fault?.backtrace.dropFirst().map(\.location))
        #expect(qemuConsole.text == kvmConsole.text)
        #expect(!kvmConsole.text.isEmpty)
    }

    /// Well-formed calls (time, wait, wake, console) in a random order for ten seconds, then
    /// garbage: under QEMU too each well-formed call is served and the garbage ends the run
    /// in a report, as the KVM engine's storm test asks.
    @Test func aStormOfRandomHypercallsUnderQEMUEndsInAReport() throws {
        let (report, console) = try bootUnderQEMU("Tests/Guests/hypercallstorm", timeout: 120)
        let served = console.text.split(separator: "\n").first { $0.hasSuffix("well-formed hypercalls served") }
        #expect(served.flatMap { Int($0.split(separator: " ")[0]) }.map { $0 >= 1000 } == true, "\(console.text)")
        #expect(
            ["faulted", "panicked", "exited"].contains(report.outcome), "\(report.outcome): \(report.message ?? "")")
        if let fault = report.fault {
            #expect(fault.kind == .badHypercall || fault.kind == .pageFault, "\(fault.summary)")
        }
        #expect((report.compartments[0].hypercalls["time"] ?? 0) > 0)
    }

    @Test func aSpinningGuestIsStoppedByTheTimeout() throws {
        let (report, _) = try bootUnderQEMU("Tests/Guests/spin", timeout: 3)
        #expect(report.outcome == "timed out")
        #expect(report.exitStatus == 124)
    }

    @Test func vmeptImageSetsAreRefusedWithAReason() throws {
        let set = try ImageSet.open(try TestImages.build("Configs/example-vmept2.yaml").folder)
        #expect {
            _ = try QEMUEngine().run(set, options: LaunchOptions(), console: CapturedConsole(), timeout: 10)
        } throws: { "\($0)".contains("the QEMU engine runs single-VM image sets (fcalls, intel-mpk)") }
    }

    @Test(arguments: ["Configs/example-mpk2.yaml", "Configs/example-mpk3.yaml", "Tests/Guests/example-mpk.yaml"])
    func theExampleRunsInIntelMPKWithProtectionKeys(_ conformation: String) throws {
        let (report, console) = try bootUnderQEMU(conformation)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text.contains("audit: 1 call(s) recorded"))
        #expect(console.text.contains("callback called!"))
        #expect(console.text.contains("lib_func set stack_int to 42 and cleared static_buf: yes"))
    }

    /// A hostile callee returns with r12-r15 of its choosing and overwrites every word of
    /// the runtime's writable data (key 0, which every compartment's PKRU opens): the
    /// caller gets its registers back as they were, and its next array still comes from
    /// its own keyed heap (a forged boot-info pointer once sent it to shared memory).
    @Test func aHostileCalleeSteersNeitherTheRegistersNorTheMemoryOfItsCaller() throws {
        let (report, console) = try bootUnderQEMU("Tests/Guests/mpkhostile-mpk2.yaml")
        #expect(report.outcome == "exited" && report.exitStatus == 0, "\(report.message ?? "")\n\(console.text)")
        #expect(console.text.contains("mpkhostile: the gate gave back r12-r15 as they were"))
        #expect(console.text.contains("mpkhostilelib: overwrote the runtime's writable data"))
        #expect(console.text.contains("mpkhostile: a private array came from its own heap"))
    }

    /// A jump to a gate's WRPKRU with every key open in EAX ends at the gate's check,
    /// reported as such (not as a Swift runtime trap).
    @Test func aJumpIntoTheMiddleOfAGateIsStoppedByItsCheck() throws {
        let (report, console) = try bootUnderQEMU("Tests/Guests/mpkgatejump-mpk2.yaml")
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.kind == .gateCheck)
        #expect(fault.function == "flexos_mpk_gate_abort")
        #expect(fault.summary.contains("a jump into the middle of a gate"), "\(fault.summary)")
        #expect(!console.text.contains("went unnoticed"))
    }

    /// SIGKILL of `flexosd launch --engine qemu` once left qemu-system-x86_64 running at
    /// 100% CPU, adopted by init, and its folder of files behind.
    /// A callee that writes its caller's saved stack pointer (where the caller resumes)
    /// runs into the caller's key: the write faults and names both.
    @Test func aForgedSavedStackIsAProtectionKeyFault() throws {
        let (report, console) = try bootUnderQEMU("Tests/Guests/mpkforge-mpk2.yaml")
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.kind == .protectionKeyFault && fault.compartment == "comp2", "\(fault.render())")
        #expect(fault.summary.contains("key 1 of compartment comp1"), "\(fault.summary)")
        #expect(
            !console.text.contains("the forgery went through") && !console.text.contains("resumed after the forgery"))
    }

    /// The stack canary was key-0 writable data: any compartment could set it. It is
    /// read-only now (the monitor writes it), so the write faults.
    @Test func theStackCanaryCannotBeWritten() throws {
        let (report, console) = try bootUnderQEMU("Tests/Guests/mpkcanary-mpk2.yaml")
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.summary.contains("read-only"), "\(fault.render())")
        #expect(
            console.text.contains("overwriting the stack canary")
                && !console.text.contains("the canary was overwritten"))
    }

    @Test func qemuDiesWithFlexosdAndItsFilesGoAtTheNextRun() throws {
        let spin = try TestImages.build("Tests/Guests/spin").folder
        let flexosd = Process()
        flexosd.executableURL = URL(fileURLWithPath: Executables.folder + "/flexosd")
        flexosd.arguments = ["launch", "--engine", "qemu", "--timeout", "60s", spin]
        flexosd.standardOutput = FileHandle.nullDevice
        flexosd.standardError = FileHandle.nullDevice
        try flexosd.run()
        let parent = flexosd.processIdentifier
        var qemu: Int32?
        for _ in 0..<200 where qemu == nil {
            qemu = childProcesses(of: parent).first
            if qemu == nil { usleep(50_000) }
        }
        let child = try #require(qemu, "flexosd started no QEMU within 10 s")
        let folders = {
            (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()))?.filter {
                $0.hasPrefix("flexos-qemu-\(parent)-")
            } ?? []
        }
        #expect(!folders().isEmpty)
        kill(parent, SIGKILL)
        flexosd.waitUntilExit()
        var gone = false
        for _ in 0..<100 where !gone {
            gone =
                kill(child, 0) != 0
                || (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?.contains(") Z ") == true
            if !gone { usleep(50_000) }
        }
        #expect(gone, "QEMU (pid \(child)) outlived flexosd")
        let (report, _) = try bootUnderQEMU("Guest/Apps/hello")
        #expect(report.exitStatus == 0)
        #expect(folders().isEmpty, "\(folders())")
    }

    private func childProcesses(of parent: Int32) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent ? pid : nil
        }
    }

    @Test func theDebuggingStoryIsAProtectionKeyFault() throws {
        let (report, _) = try bootUnderQEMU("Configs/example-unshared-mpk2.yaml")
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.kind == .protectionKeyFault)
        #expect(fault.compartment == "comp2")
        #expect(fault.summary.hasPrefix("write of 0x"))
        #expect(
            fault.summary.contains("(the private stack of compartment comp1, key 1 of compartment comp1)"),
            "\(fault.summary)")
        #expect(fault.location?.hasSuffix("Guest/Libraries/flexosexample/lib_func.swift:10") == true)
        #expect(fault.gate == "export flexosexample.lib_func, called from compartment comp1")
        #expect(fault.render().hasPrefix("protection-key fault in compartment comp2: write of 0x"))
    }

    @Test func aCallThatSkipsItsGateRunsIntoTheCalleesKey() throws {
        let folder = NSTemporaryDirectory() + "flexos-skipgate-mpk-\(getpid()).yaml"
        try String(contentsOfFile: repositoryRoot + "/Configs/example-skipgate-vmept2.yaml", encoding: .utf8)
            .replacingOccurrences(of: "mechanism: vmept", with: "mechanism: intel-mpk").write(
                toFile: folder, atomically: true, encoding: .utf8)
        let result = try Executables.run("flexosctl", ["build", folder, "--output", folder + ".build", "--quiet"])
        #expect(result.status == 0, "\(result.errors)")
        let report = try QEMUEngine().run(
            try ImageSet.open(folder + ".build"), options: LaunchOptions(), console: CapturedConsole(), timeout: 60)
        let fault = try #require(report.fault, "\(report.message ?? "")")
        #expect(fault.kind == .protectionKeyFault && fault.compartment == "comp1")
        #expect(fault.summary.contains("library flexosexample (compartment comp2), key 2"), "\(fault.summary)")
    }

    @Test func flexosdRunTakesTheEngine() throws {
        let folder = try TestImages.build("Guest/Apps/hello").folder
        let result = try Executables.run("flexosd", ["launch", "--engine", "qemu", "--json", folder])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("Hello from FlexOS"))
        let refused = try Executables.run("flexosd", ["launch", "--engine", "qemu", "--listen", "127.0.0.1:0", folder])
        #expect(refused.status == 1 && refused.errors.contains("it has no network device"), "\(refused.errors)")
        // Named no engine, an intel-mpk set runs where it can: QEMU, on a host whose KVM has no protection keys.
        let keyed = try Executables.run("flexosd", ["launch", try TestImages.build("Configs/example-mpk2.yaml").folder])
        #expect(keyed.status == 0 && keyed.output.contains("callback called!"), "\(keyed.errors)")
        if (try? requireKVM().offersProtectionKeys) != true {
            #expect(
                keyed.errors.contains(
                    "flexosd: runs on qemu: no engine asked for: kvm cannot (this host's KVM offers no protection keys"),
                "\(keyed.errors)")
        }
    }

    /// `flexosctl inspect compartments FOLDER` shows each compartment's key and PKRU without running it.
    @Test func inspectShowsEachCompartmentsKeyAndPKRU() throws {
        let folder = try TestImages.build("Configs/example-mpk2.yaml").folder
        let result = try Executables.run("flexosctl", ["inspect", "compartments", folder, "--json"])
        #expect(result.status == 0, "\(result.errors)")
        struct View: Decodable {
            struct Machine: Decodable { let compartments: [Compartment] }
            struct Compartment: Decodable {
                let name: String
                let protectionKey: Int?
                let pkru: String?
                let hardening: [String]
            }
            let mechanism: String
            let machines: [Machine]
        }
        let view = try JSONDecoder().decode(View.self, from: Data(result.output.utf8))
        #expect(view.mechanism == "intel-mpk" && view.machines.count == 1)
        let compartments = view.machines[0].compartments
        #expect(compartments.map(\.name) == ["comp1", "comp2"])
        #expect(compartments.map(\.protectionKey) == [1, 2])
        // Access and write disabled for every key but 0 and its own: bits 2k and 2k+1.
        #expect(compartments.map(\.pkru) == ["0xfffffff0", "0xffffffcc"])
        #expect(compartments[1].hardening == ["stack-protector", "bounds-checks"])
        let text = try Executables.run("flexosctl", ["inspect", "compartments", folder]).output
        #expect(text.contains("comp2  key 2, PKRU 0xffffffcc (only keys 0 and 2 open)"))
    }
}
