import Foundation
import GuestImage
import Monitor
import QEMUEngine
import Testing

/// Runs `target` under the QEMU engine (qemu-system-x86_64 -accel tcg -cpu max and the
/// ring-0 shim). Fails, never skips, where QEMU is missing: scripts/setup.sh installs it.
func bootUnderQEMU(_ target: String, timeout: Double = 60) throws -> (report: RunReport, console: CapturedConsole) {
    let console = CapturedConsole()
    let set = try ImageSet.open(try TestImages.build(target).folder)
    return (try QEMUEngine(imageSet: set, options: LaunchOptions()).run(console: console, timeout: timeout), console)
}

/// The same guests as on KVM, under emulation: the same console, exit codes and reports.
@Suite(.serialized) struct QEMUEngineTests {
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

    @Test func aPanicAndAPrivilegedInstructionUnderQEMU() throws {
        let panic = try bootUnderQEMU("Tests/Guests/panicline").report
        #expect(panic.outcome == "panicked" && panic.message?.contains("hostile panic") == true, "\(panic.message ?? "")")
        let privileged = try bootUnderQEMU("Tests/Guests/privileged").report
        #expect(privileged.fault?.kind == .privilegedInstruction, "\(privileged.message ?? "")")
    }

    @Test func aSpinningGuestIsStoppedByTheTimeout() throws {
        let (report, _) = try bootUnderQEMU("Tests/Guests/spin", timeout: 3)
        #expect(report.outcome == "timed out")
        #expect(report.exitStatus == 124)
    }

    @Test func vmeptImageSetsAreRefusedWithAReason() throws {
        let set = try ImageSet.open(try TestImages.build("Configs/example-vmept2.yaml").folder)
        #expect {
            _ = try QEMUEngine(imageSet: set, options: LaunchOptions()).run(console: CapturedConsole(), timeout: 10)
        } throws: { "\($0)".contains("the QEMU engine runs single-VM image sets (fcalls, intel-mpk)") }
    }

    @Test func intelMPKIsRefusedUntilItsBackendExists() throws {
        let set = try ImageSet.open(try TestImages.build("Tests/Guests/example-mpk.yaml").folder)
        #expect {
            _ = try QEMUEngine(imageSet: set, options: LaunchOptions()).run(console: CapturedConsole(), timeout: 10)
        } throws: { "\($0)".contains("the intel-mpk backend (keyed page tables and PKRU gates) is not written yet") }
    }

    @Test func flexosdRunTakesTheEngine() throws {
        let folder = try TestImages.build("Guest/Apps/hello").folder
        let result = try Executables.run("flexosd", ["run", "--engine", "qemu", "--json", folder])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.errors.contains("Hello from FlexOS"))
        let refused = try Executables.run("flexosd", ["run", "--engine", "qemu", "--listen", "127.0.0.1:0", folder])
        #expect(refused.status == 1 && refused.errors.contains("--listen needs a network device"))
    }
}
