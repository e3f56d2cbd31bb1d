import Foundation
import GuestImage
import GuestMachine
import KVM
import Monitor
import Testing

/// Real VMs on /dev/kvm running real Embedded Swift guests.
@Suite(.tags(.boot), .beyondTheUnitTier) struct BootTests {
    @Test func helloPrintsItsGreetingAndExitsZero() throws {
        let (report, console) = try boot(try TestImages.build("Guest/Apps/hello").folder)
        #expect(report.outcome == "exited")
        #expect(report.exitStatus == 0)
        #expect(console.text.contains("Hello from FlexOS, Embedded Swift in ring 3!"))
        #expect(
            console.text.contains(
                "squares 1 4 9 16 25 36 49 64 81 100 add up to 385; 'the' appears 3 times in 10 distinct words"))
        let compartment = try #require(report.compartments.first)
        // One hypercall per line and one to exit: the console does not exit per character.
        #expect(compartment.hypercalls == ["console_flush": 2, "exit": 1])
        #expect(report.firstHypercallAt != nil)
    }

    @Test func aFaultIsReportedWithFunctionAddressAndLine() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/fault").folder)
        #expect(console.text.contains("about to touch unmapped memory"))
        #expect(report.exitStatus == 139)
        let fault = try #require(report.fault)
        #expect(fault.kind == .pageFault)
        #expect(fault.address == 0xDEAD_0000)
        #expect(fault.registers["cr2"] == 0xDEAD_0000)
        #expect(fault.function?.hasPrefix("fault.touchUnmapped(Swift.UInt64)") == true)
        #expect(fault.location?.hasSuffix("Tests/Guests/fault/main.swift:9") == true)
        #expect(fault.backtrace.contains { $0.function.hasPrefix("app_main") })
        #expect(fault.render().contains("access to 0xdead0000, which is not mapped in compartment comp1"))
    }

    @Test func aPrivilegedInstructionIsReported() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/privileged").folder)
        let fault = try #require(report.fault)
        #expect(fault.kind == .privilegedInstruction)
        #expect(fault.summary.contains("hlt"))
        #expect(fault.function == "privilegedcode_halt")
    }

    @Test func aStackOverflowIsReported() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/stackoverflow").folder)
        let fault = try #require(report.fault)
        #expect(fault.kind == .stackOverflow)
        #expect(fault.function?.contains("stackoverflow.recurse") == true)
        #expect(fault.addressRegion == "the private stack guard of compartment comp1")
    }

    @Test func aFailedBoundsCheckIsReportedAsATrap() throws {
        let (report, _) = try boot(try TestImages.build("Tests/Guests/trap.yaml").folder)
        let fault = try #require(report.fault)
        #expect(fault.kind == .trap)
        #expect(fault.function?.contains("trap.readPastTheEnd") == true)
    }

    @Test func aPanicReportsItsMessage() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/panic").folder)
        #expect(console.text.contains("about to panic"))
        #expect(report.outcome == "panicked")
        #expect(report.exitStatus == 134)
        #expect(report.message == "guest panic in compartment comp1: the answer was not 42 (at panic/main.swift:6)")
    }

    @Test func aSpinningGuestIsStoppedByTheTimeout() throws {
        let started = monotonicNanoseconds()
        let (report, console) = try boot(try TestImages.build("Tests/Guests/spin").folder, timeout: 0.5)
        #expect(console.text.contains("spinning for ever"))
        #expect(report.outcome == "timed out")
        #expect(report.exitStatus == 124)
        #expect(report.message?.contains("did not exit within 500.0 ms") == true)
        // Where it was spinning: the loop of main.swift.
        #expect(report.message?.contains("comp1 was at app_main") == true)
        #expect(report.message?.contains("(Tests/Guests/spin/main.swift:7)") == true)
        #expect(monotonicNanoseconds() - started < 10_000_000_000)
    }

    @Test func theHeapReusesFreedMemoryAndLongLinesArriveWhole() throws {
        let (report, console) = try boot(try TestImages.build("Tests/Guests/runtimecheck").folder, memory: 2 << 20)
        #expect(report.exitStatus == 0, "\(report.message ?? "")")
        #expect(console.text.contains("heap: 1000500000 checked, 0 bytes still in use after 500 rounds"))
        let long = "long line: " + String(repeating: "0123456789", count: 4_000) + "\n"
        #expect(console.text.hasSuffix(long))
        // A 40 KB line through a 16 KB ring: flushed each time the ring fills, then at its end.
        #expect((report.compartments[0].hypercalls["console_flush"] ?? 0) >= 3)
    }

    @Test func tooLittleMemoryIsRefused() throws {
        let hypervisor = try requireKVM()
        let set = try ImageSet.open(try TestImages.build("Guest/Apps/hello").folder)
        #expect {
            try ImageSetRun(
                set, options: LaunchOptions(memory: 64 * 1024), hypervisor: hypervisor, console: CapturedConsole(),
                devices: deviceProviders)
        } throws: { error in
            "\(error)".contains("memory size 64 KiB is too small")
        }
    }

    @Test func aMissingKVMDeviceIsExplained() {
        #expect(throws: KVMError.cannotOpenDevice(path: "/nonexistent/kvm", .noEntry)) {
            try Hypervisor(devicePath: "/nonexistent/kvm")
        }
        #expect(KVMError.cannotOpenDevice(path: "/dev/kvm", .noEntry).description.contains("this host offers no KVM"))
        #expect(KVMError.cannotOpenDevice(path: "/dev/kvm", .permissionDenied).description.contains("no permission"))
    }

    @Test func runsLeaveNoVMOrMemoryBehind() throws {
        let hello = try TestImages.build("Guest/Apps/hello").folder
        let fault = try TestImages.build("Tests/Guests/fault").folder
        vmLock.lock()
        defer { vmLock.unlock() }
        // KVM runs only: the QEMU engine's tests, which may run meanwhile, map QEMU's memory too.
        let kvmDescriptors = { openVMDescriptors().filter { !$0.contains(":qemu-") } }
        let before = kvmDescriptors()
        for _ in 0..<3 { _ = try boot(hello) }
        _ = try boot(fault)
        _ = try boot(try TestImages.build("Tests/Guests/spin").folder, timeout: 0.1)
        // Nothing these runs made is left. (A key-value server another test started before
        // may have stopped meanwhile, so fewer is fine; none can start: this test holds the lock.)
        let left = kvmDescriptors()
        for descriptor in Set(left) {
            #expect(
                left.filter { $0 == descriptor }.count <= before.filter { $0 == descriptor }.count,
                "\(descriptor) is left open")
        }
    }
}
