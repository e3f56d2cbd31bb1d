import ArgumentParser
import ControlClient
import ControlProtocol
import Foundation
import GuestImage
import GuestMachine

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Look inside a running or finished image set.",
        subcommands: [Compartments.self])
}

/// `flexosctl inspect compartments NAME`.
struct Compartments: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "compartments",
        abstract:
            "Per compartment: mechanism, libraries, hardening, vCPU state, memory regions, gate calls and latency, exits by reason.",
        discussion:
            "Given an image set folder instead of a name, shows its layout without running it (or a daemon): each VM's compartments, libraries and hardening, and under intel-mpk each compartment's protection key and PKRU."
    )

    @Argument(help: "The name of an image set in flexosd, or an image set folder (from flexosctl build).")
    var name: String

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        if ImageSetLayoutView.isImageSet(name) {
            let view: ImageSetLayoutView
            do { view = try ImageSetLayoutView(path: name) } catch {
                throw CleanExit.failure("flexosctl: error: \(error)")
            }
            return daemon.json ? try printJSON(view) : print(view.text)
        }
        let base = ControlAPIPaths.imageSet(name)
        let (status, compartments) = try await talkingToDaemon { () async throws(ClientError) in
            (
                try await daemon.client.send(.GET, base, as: ImageSetStatus.self),
                try await daemon.client.send(.GET, base + "/compartments", as: [CompartmentSnapshot].self)
            )
        }
        if daemon.json { return try printJSON(compartments) }
        print(
            "image set \(status.name): \(status.mechanism) on \(status.whereItRuns), \(status.state)"
                + (status.exitStatus.map { " (status \($0))" } ?? "") + " after \(formatSeconds(status.seconds))")
        for compartment in compartments { print(describe(compartment)) }
    }

    private func describe(_ compartment: CompartmentSnapshot) -> String {
        var lines = [
            "",
            "\(compartment.name)  [\(compartment.mechanism)]  vCPU \(compartment.vcpu.rawValue)  libraries: \(compartment.libraries.joined(separator: ", "))"
        ]
        for (name, hardening) in compartment.hardening.sorted(by: { $0.key < $1.key }) {
            lines.append(
                "  hardening" + (compartment.hardening.count > 1 ? " of \(name)" : "") + ": "
                    + (hardening.isEmpty ? "none" : hardening.joined(separator: ", ")))
        }
        for keyed in compartment.protectionKeys ?? [] {
            lines.append(
                "  \(keyed.compartment): key \(keyed.key), PKRU \(keyed.pkru) (only keys 0 and \(keyed.key) open)")
        }
        if let observed = compartment.rightsAtLastHypercall {
            lines.append(
                "  PKRU at the last hypercall: \(observed.pkru)"
                    + (observed.compartment.map { " (\($0)'s rights)" } ?? " (no compartment's own)"))
        }
        lines.append(
            "  memory: \(formatBytes(compartment.privateBytes)) private, \(formatBytes(compartment.sharedBytes)) shared"
        )
        for region in compartment.regions.sorted(by: { $0.start < $1.start }) {
            let what = [region.kind, region.library, region.section].compactMap { $0 }.joined(separator: " ")
            lines.append(
                "    \(hex(region.start).padding(toLength: 12, withPad: " ", startingAt: 0)) \(formatBytes(region.size).padding(toLength: 10, withPad: " ", startingAt: 0)) \(region.permissions)  \(region.shared ? "shared " : "private") \(what)"
            )
        }
        let gates = compartment.gates
        var latency = ""
        if let mean = gates.meanNanoseconds, let max = gates.maxNanoseconds {
            latency =
                " (latency mean \(formatSeconds(mean / 1e9)), max \(formatSeconds(max / 1e9)), over \(gates.sampledCalls) timed)"
        }
        lines.append("  gate calls: \(gates.callsOut) out\(latency), \(gates.callsIn) in")
        let kvm = compartment.kvmStatistics
        let reasons = kvm.filter { $0.key.hasSuffix("_exits") && $0.value > 0 }.sorted { $0.key < $1.key }.map {
            "\($0.key.dropLast(6)) \($0.value)"
        }
        lines.append(
            "  exits: \(kvm["exits"] ?? 0)"
                + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: ", ")); page faults \(kvm["pf_taken"] ?? 0))"))
        if let notification = compartment.notification {
            let sleeps = gates.sleeps.map { "; slept \($0) times" } ?? ""
            let rung = gates.doorbellsRung.map { ", rang \($0) doorbells" } ?? ""
            lines.append("  notification: \(notification)\(sleeps); woken \(compartment.woken ?? 0) times\(rung)")
        }
        for device in compartment.devices ?? [] { lines.append("  \(device.description): \(device.summary)") }
        lines.append(
            "  hypercalls: "
                + (compartment.hypercalls.isEmpty
                    ? "none"
                    : compartment.hypercalls.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                        separator: ", ")))
        return lines.joined(separator: "\n")
    }
}
