import Foundation
import GuestImage
import GuestMachine
import Monitor
import Testing

/// Doorbells (flexos_abi.h): a compartment wakes another, and the network library kicks the
/// network device, with a store KVM turns into an eventfd signal in the kernel, so the side
/// that rings never exits to flexosd. The hypercalls stay as the fallback and are compared.
@Suite(.tags(.boot), .beyondTheUnitTier, .serialized) struct DoorbellTests {
    /// ticker-vmept2 for a second: the ticker calls tickerlib every 2 ms, and tickerlib has
    /// gone to sleep by then, so each call wakes it.
    static func tick(_ configure: (inout LaunchOptions) -> Void) throws -> (RunReport, CapturedConsole) {
        let folder = try TestImages.build("Tests/Guests/ticker-vmept2.yaml").folder
        vmLock.lock()
        defer { vmLock.unlock() }
        var options = LaunchOptions()
        configure(&options)
        let console = CapturedConsole()
        let run = try ImageSetRun(
            try ImageSet.open(folder), options: options, hypervisor: try requireKVM(), console: console,
            devices: deviceProviders)
        return (run.wait(timeout: 1), console)
    }

    func tick(doorbells: Bool) throws -> RunReport { try DoorbellTests.tick { $0.doorbells = doorbells }.0 }

    @Test func aSleepingCompartmentIsWokenByItsDoorbellAndTheRingerDoesNotExit() throws {
        let report = try tick(doorbells: true)
        #expect(report.outcome == "timed out", "\(report.summary())")
        let ticker = try #require(report.compartments.first { $0.name == "comp1" })
        let library = try #require(report.compartments.first { $0.name == "comp2" })
        #expect(
            ticker.notification?.hasPrefix("doorbells") == true && library.notification?.hasPrefix("doorbells") == true)
        #expect(library.woken >= 20, "\(report.summary())")
        #expect(ticker.hypercalls["wake"] == nil && library.hypercalls["wake"] == nil, "\(report.summary())")

        // The fallback: every one of those wakes is a hypercall, an exit of the ringing side.
        let fallback = try tick(doorbells: false)
        let ringer = try #require(fallback.compartments.first { $0.name == "comp1" })
        #expect(ringer.notification?.hasPrefix("wake hypercalls") == true)
        #expect(ringer.hypercalls["wake", default: 0] >= 20, "\(fallback.summary())")
    }

    @Test func gateCallsBetweenBusySidesMakeNoExit() throws {
        let (report, console) = try boot(try TestImages.build("Benchmarks/Guests/gatebench-vmept.yaml").folder)
        #expect(report.outcome == "exited", "\(report.summary())")
        let calls = 520_000.0
        #expect(console.text.contains("gatebench calls=500000"), "\(console.text)")
        let exits = report.compartments.map { $0.exits.values.reduce(0, +) }.reduce(0, +)
        // Alone on this machine: 35 exits for the 520,000 calls (sleeps at start and end). While
        // the other tests take the cores, a descheduled side sleeps now and then: 4,021 exits
        // (0.008 per call) in one such run. An exit per call would be 1 or more.
        #expect(Double(exits) / calls < 0.05, "\(exits) exits to flexosd for \(Int(calls)) gate calls")
    }

    @Test func theNetworkLibraryKicksTheDeviceThroughItsDoorbell() throws {
        for doorbells in [true, false] {
            let server = try KeyValueServer("Configs/kvstore-parser-vmept2.yaml", doorbells: doorbells)
            // Each redis-cli is a process of its own: between two, the device has gone to sleep,
            // so the reply's transmit needs a kick.
            for _ in 0..<20 { #expect(try server.cliText(["PING"]) == "PONG\n") }
            let report = server.stop()
            let net = try #require(report.compartments.first { $0.name == "comp2" })
            let kicks = report.devices.first { $0.kind == "net" }?.counters["kicks", default: 0] ?? 0
            #expect(kicks >= 1, "\(report.summary())")
            if doorbells {
                #expect(net.hypercalls["net_kick"] == nil, "\(report.summary())")
            } else {
                #expect(net.hypercalls["net_kick", default: 0] >= 1, "\(report.summary())")
            }
        }
    }
}
