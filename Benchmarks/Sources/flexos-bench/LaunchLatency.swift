import ArgumentParser
import Foundation

/// Launch latency of `flexosd launch`: from the spawn of the process to the guest's first
/// hypercall and to the process's end, against spawning /bin/true in the same run.
struct LaunchLatency: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Median time from spawning `flexosd launch IMAGE` to the guest's first hypercall and to exit.")

    @Option(help: "The flexosd binary to measure.")
    var flexosd = ".build/release/flexosd"

    @Option(help: "The image set to run.")
    var image = "Guest/build/hello"

    @Option(help: "Runs of each.")
    var runs = 50

    func run() throws {
        var firstHypercall: [Double] = []
        var processEnd: [Double] = []
        var insideProcess: [Double] = []
        var baseline: [Double] = []
        var startup: [Double] = []
        var exits: [Double] = []
        var mmioExits: [Double] = []
        var pageFaults: [Double] = []
        for _ in 0..<runs {
            let trueRun = try spawnAndWait(["/bin/true"])
            baseline.append(Double(trueRun.reapedAt - trueRun.spawnedAt))
            let version = try spawnAndWait([flexosd, "--version"])
            startup.append(Double(version.reapedAt - version.spawnedAt))

            let run = try spawnAndWait([flexosd, "launch", "--json", image])
            guard run.status == 0, let report = try JSONSerialization.jsonObject(with: run.output) as? [String: Any],
                let first = report["firstHypercallAt"] as? UInt64, let started = report["launchStartedAt"] as? UInt64,
                let compartments = report["compartments"] as? [[String: Any]]
            else { throw BenchError("flexosd launch failed (status \(run.status))") }
            firstHypercall.append(Double(first - run.spawnedAt))
            insideProcess.append(Double(first - started))
            processEnd.append(Double(run.reapedAt - run.spawnedAt))
            let kvm = compartments.compactMap { $0["kvmStatistics"] as? [String: Int] }
            exits.append(Double(kvm.map { $0["exits"] ?? 0 }.reduce(0, +)))
            mmioExits.append(Double(kvm.map { $0["mmio_exits"] ?? 0 }.reduce(0, +)))
            pageFaults.append(Double(kvm.map { $0["pf_taken"] ?? 0 }.reduce(0, +)))
        }
        print("flexos-bench launch: \(runs) runs of `\(flexosd) run \(image)`, medians")
        print("  spawn -> first hypercall:          \(milliseconds(median(firstHypercall)))")
        print(
            "    of which inside the launch:      \(milliseconds(median(insideProcess))) (VMs, memory, image, vCPU, first guest code)"
        )
        print("  spawn -> process reaped:           \(milliseconds(median(processEnd)))")
        print("  baseline spawn -> reaped /bin/true: \(milliseconds(median(baseline)))")
        print(
            "  baseline spawn -> reaped `flexosd --version` (Swift runtime + argument parsing): \(milliseconds(median(startup)))"
        )
        print(
            String(
                format: "  ratio first hypercall / flexosd --version:  %.2fx", median(firstHypercall) / median(startup))
        )
        print(
            "  VM exits for the whole run (KVM_GET_STATS_FD): \(Int(median(exits))) (MMIO \(Int(median(mmioExits))), page faults \(Int(median(pageFaults))))"
        )
    }
}
