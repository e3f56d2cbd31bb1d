import Foundation
import GuestMachine
import Monitor
import Testing

/// Sleeping in the kernel (flexos_abi.h): an idle compartment halts its vCPU inside KVM, and
/// the interrupt its wake eventfd raises (a peer's doorbell, the network device, its timer)
/// wakes it. Neither the sleeper nor the waker exits to flexosd; the wait hypercall stays as
/// the fallback (`--no-kernel-sleep`) and is compared.
@Suite(.tags(.boot), .beyondTheUnitTier, .serialized) struct KernelSleepTests {
    @Test func aSleepingCompartmentHaltsInTheKernelAndItsDoorbellWakesIt() throws {
        let (report, console) = try DoorbellTests.tick { _ in }
        #expect(report.outcome == "timed out", "\(report.summary())")
        // Its 2 ms sleeps are the local APIC's timer: about 400 ticks a second.
        #expect(console.text.contains("tick 200"), "\(console.text)")
        let ticker = try #require(report.compartments.first { $0.name == "comp1" })
        let library = try #require(report.compartments.first { $0.name == "comp2" })
        for compartment in [ticker, library] {
            #expect(compartment.notification == "doorbells, sleeping in the kernel")
            #expect(compartment.hypercalls["wait"] == nil, "\(report.summary())")
        }
        // Each call finds tickerlib halted and its doorbell's interrupt wakes it ...
        #expect(library.woken >= 200, "\(report.summary())")
        #expect(library.kvmStatistics["irq_injections", default: 0] >= 200, "\(report.summary())")
        // ... with no exit to flexosd on either side: tickerlib's only one is the stop.
        #expect(library.exits.filter { $0.key != "interrupted" }.isEmpty, "\(report.summary())")
        #expect(ticker.exits.filter { $0.key != "interrupted" && $0.key != "mmio" }.isEmpty, "\(report.summary())")

        // The fallback: every one of those sleeps is a wait hypercall, an exit of the sleeper.
        let (fallback, _) = try DoorbellTests.tick { $0.sleepInKernel = false }
        let sleeper = try #require(fallback.compartments.first { $0.name == "comp2" })
        #expect(sleeper.notification == "doorbells")
        #expect(sleeper.hypercalls["wait", default: 0] >= 200, "\(fallback.summary())")
    }

    /// 10,000 calls after pauses around the polling window: the callee is woken at every
    /// point of its way into sleep, thousands of times, and no wake is lost (a lost one
    /// would cost that call up to the longest halt, 200 ms, and the run its time).
    @Test func wakesLandingOnEveryStepOfTheWayIntoSleepAreNotLost() throws {
        let (report, console) = try boot(
            try TestImages.build("Tests/Guests/wakestress-vmept2.yaml").folder, timeout: 60)
        #expect(report.outcome == "exited", "\(report.summary())")
        #expect(console.text.contains("wakestress calls=10000"), "\(console.text)")
        let callee = try #require(report.compartments.first { $0.name == "comp2" })
        #expect(callee.woken >= 1000 && callee.hypercalls["wait"] == nil, "\(report.summary())")
        #expect(report.wallSeconds < 20, "\(report.summary())")
    }

    /// The appliance under redis-benchmark: requests flow from the device to the parser's VM
    /// and on to the store's without an exit to flexosd per request, busy or between bursts.
    @Test func aBusyApplianceMakesNoExitPerRequest() throws {
        let server = try KeyValueServer("Configs/kvstore-parser-vmept2.yaml")
        let requests = 20_000
        let output = String(
            decoding: try Redis.run(
                "redis-benchmark", ["-p", "\(server.port)", "-c", "50", "-n", "\(requests)", "-t", "set,get", "-q"]),
            as: UTF8.self)
        #expect(!output.contains("Error") && output.contains("GET"), "\(output)")
        let report = server.stop()
        let exits = report.compartments.map { $0.exits.filter { $0.key != "interrupted" }.values.reduce(0, +) }
            .reduce(0, +)
        // Console flushes at start-up are the only exits: 2 in a run alone on this machine.
        #expect(Double(exits) / Double(2 * requests) < 0.001, "\(exits) exits to flexosd: \(report.summary())")
        for compartment in report.compartments {
            #expect(compartment.notification == "doorbells, sleeping in the kernel")
            #expect(compartment.hypercalls["wait"] == nil, "\(report.summary())")
        }
    }
}
