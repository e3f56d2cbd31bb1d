import ArgumentParser
import Foundation
import GuestMachine
import Hosts

struct HostsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosts",
        abstract: "Show which isolation mechanisms each host can enforce, and with which engine.",
        discussion: """
            Asks each host's libvirt (read-only) for its CPU, memory and hypervisors, and judges from them which mechanisms it can run: fcalls and vmept with flexosd's own KVM engine where the host is this machine, intel-mpk where KVM offers protection keys (PKU) or, slower, where QEMU's emulation (TCG) gives them. With no --connect it asks this machine's qemu:///system; when no libvirtd answers there it says so and reports what flexosd's own /dev/kvm probe sees instead.
            """)

    @Option(
        name: .customLong("connect"),
        help: ArgumentHelp(
            "A libvirt URI (qemu:///system, qemu+ssh://host/system, test:///default); repeat for several hosts.",
            valueName: "URI"))
    var uris: [String] = []

    @Flag(help: "Print JSON (one array of hosts) instead of text.")
    var json = false

    func run() throws {
        var hosts: [HostDescription] = []
        for uri in uris.isEmpty ? [HostSurvey.defaultURI] : uris {
            do { hosts.append(try HostSurvey.describe(uri, fallBackToKVMProbe: uris.isEmpty)) } catch {
                throw CleanExit.failure("flexosctl: error: \(error)")
            }
        }
        if json { return try printJSON(hosts) }
        print(hosts.map(Self.text).joined(separator: "\n"))
    }

    static func text(_ host: HostDescription) -> String {
        var lines = ["\(host.uri)" + (host.hostname.map { " (\($0))" } ?? "")]
        if let note = host.note { lines.append("  note: \(note)") }
        let cpu = [host.cpuVendor, host.cpuModel].compactMap { $0 }.joined(separator: " ")
        lines.append(
            "  cpu: \(host.architecture)\(cpu.isEmpty ? "" : ", \(cpu)"), \(host.cpus) logical CPUs; deciding features: \(host.deciding.isEmpty ? "none" : host.deciding.joined(separator: " "))"
        )
        lines.append("  memory: \(host.memoryBytes >> 20) MiB")
        let hypervisors = host.hypervisors.map {
            "\($0.type)" + ($0.protectionKeys.map { $0 ? " (with PKU)" : " (no PKU)" } ?? " (PKU unknown)")
        }
        lines.append("  hypervisors: \(hypervisors.isEmpty ? "none for x86-64" : hypervisors.joined(separator: ", "))")
        lines.append(
            "  flexosd KVM engine: \(host.localKVM ? "yes" + (host.localKVMProtectionKeys ? ", with PKU" : ", no PKU") : "no")"
        )
        for support in host.mechanisms {
            let verdict = support.engine.map { "yes, \($0)" } ?? "no"
            lines.append(
                "  \(support.mechanism.padding(toLength: 10, withPad: " ", startingAt: 0)) \(verdict): \(support.reason)"
            )
        }
        return lines.joined(separator: "\n")
    }
}
