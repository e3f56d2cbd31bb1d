import ArgumentParser
import Foundation
import GuestImage

/// The round trip of an empty cross-compartment call under fcalls and vmept, against
/// two host threads ping-ponging a cache line in the same run.
struct GateLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gates",
        abstract:
            "Round trip of an empty gate call (fcalls, vmept, and intel-mpk with --intel-mpk) as a ratio to a host cache-line ping-pong."
    )

    @Option(help: "The flexosd binary.")
    var flexosd = ".build/release/flexosd"

    @Option(help: "Runs of each image set; the median is reported.")
    var runs = 7

    @Flag(
        help:
            "Also measure intel-mpk (Guest/build/gatebench-mpk, which scripts/bench builds): on a KVM that offers protection keys only."
    )
    var intelMPK = false

    struct Sample {
        let gate: Double
        let direct: Double
        let mmioExits: Int
        let exits: Int
        let calls: Int
    }

    func run() throws {
        var pingPong: [Double] = []
        var fcalls: [Sample] = []
        var vmept: [Sample] = []
        var mpk: [Sample] = []
        for _ in 0..<runs {
            // Interleaved, so that each gate sample has a baseline taken moments before it.
            pingPong.append(hostPingPong(roundTrips: 200_000))
            fcalls.append(try measure("Guest/build/gatebench-fcalls"))
            vmept.append(try measure("Guest/build/gatebench-vmept"))
            if intelMPK { mpk.append(try measure("Guest/build/gatebench-mpk")) }
        }
        let host = median(pingPong)
        let aliasNote =
            try fcallsGateIsTheFunction()
            ? "the gate symbol is the function's own address: 0 added instructions"
            : "the gate is NOT an alias of the function"
        print("flexos-bench gates: \(runs) runs, medians; \(vmept[0].calls) calls per run")
        print(
            String(
                format: "  host threads ping-pong (baseline):   %7.1f ns per round trip (fastest run %.1f)", host,
                pingPong.min() ?? 0))
        for (name, samples) in [("fcalls", fcalls), ("vmept", vmept), ("mpk", mpk)] where !samples.isEmpty {
            let gate = median(samples.map(\.gate))
            let direct = median(samples.map(\.direct))
            let ratio = median(zip(samples, pingPong).map { $0.gate / $1 })
            let fastest = samples.map(\.gate).min() ?? 0
            print(
                String(
                    format:
                        "  %@ gate call: %7.1f ns (fastest run %.1f); ratio to the ping-pong: %.2fx by run, %.2fx fastest to fastest; a direct call in the guest: %.2f ns",
                    name.padding(toLength: 6, withPad: " ", startingAt: 0), gate, fastest, ratio,
                    fastest / (pingPong.min() ?? 1), direct))
            let calls = Double(samples[0].calls)
            if name == "fcalls" { print("    fcalls: \(aliasNote)") }
            print(
                String(
                    format: "    VM exits per call (whole run, all VMs): %.6f MMIO, %.6f in all",
                    median(samples.map { Double($0.mmioExits) }) / calls,
                    median(samples.map { Double($0.exits) }) / calls))
        }
    }

    /// Whether, in the fcalls image, the gate's symbol has the address of the function it
    /// reaches: then a gate call is the same call instruction as a direct call.
    private func fcallsGateIsTheFunction() throws -> Bool {
        let symbols = Symbolizer(image: try ELFImage(path: "Guest/build/gatebench-fcalls/gatebench-fcalls.elf"))
        guard let gate = symbols.symbol(named: "flexos_gate_gatebenchlib_empty"),
            let function = symbols.symbol(named: "gatebenchlib_empty")
        else { return false }
        return gate.address == function.address
    }

    /// Runs the image set and reads the guest's line "gatebench calls=N gate_ns=G direct_ns=D".
    private func measure(_ imageSet: String) throws -> Sample {
        let run = try spawnAndWait([flexosd, "launch", "--json", imageSet], errorsToOutput: true)
        let text = String(decoding: run.output, as: UTF8.self)
        guard run.status == 0, let line = text.split(separator: "\n").first(where: { $0.contains("gatebench calls=") })
        else {
            throw BenchError("\(imageSet) did not report: build it with scripts/bench (status \(run.status))")
        }
        var fields: [String: Double] = [:]
        for part in line.split(separator: " ") where part.contains("=") {
            let pair = part.split(separator: "=")
            fields[String(pair[0])] = Double(pair[1])
        }
        let jsonStart = text.firstIndex(of: "{")!
        let report = try JSONSerialization.jsonObject(with: Data(text[jsonStart...].utf8)) as? [String: Any]
        let kvm = (report?["compartments"] as? [[String: Any]] ?? []).compactMap {
            $0["kvmStatistics"] as? [String: Int]
        }
        let calls = fields["calls"] ?? 1
        return Sample(
            gate: (fields["gate_ns"] ?? 0) / calls, direct: (fields["direct_ns"] ?? 0) / calls,
            mmioExits: kvm.map { $0["mmio_exits"] ?? 0 }.reduce(0, +), exits: kvm.map { $0["exits"] ?? 0 }.reduce(0, +),
            calls: Int(calls))
    }
}
