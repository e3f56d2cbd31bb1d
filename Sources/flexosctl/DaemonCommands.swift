import ArgumentParser
import ControlClient
import ControlProtocol
import Foundation
import GuestMachine

/// What every command that talks to flexosd takes.
struct DaemonOptions: ParsableArguments {
    @Option(
        help:
            "flexosd's socket (default: $FLEXOSD_SOCKET, /run/flexosd.sock for root, else $XDG_RUNTIME_DIR/flexosd.sock)."
    )
    var socket: String = SocketPath.default

    @Flag(help: "Print JSON for scripts.")
    var json = false

    var client: ControlClient { ControlClient(socketPath: socket) }
}

/// A flexosctl command that talks to flexosd: its work is async (the client is SwiftNIO),
/// while the root command stays synchronous (see `waitForAsync`).
protocol DaemonCommand: ParsableCommand, Sendable {
    func perform() async throws
}

extension DaemonCommand {
    func run() throws {
        let command = self
        try waitForAsync { try await command.perform() }
    }
}

/// Runs a request against flexosd, turning a failure into a message and status 1.
func talkingToDaemon<T>(_ body: () async throws(ClientError) -> T) async throws -> T {
    do { return try await body() } catch {
        throw CleanExit.failure("flexosctl: error: \(error)")
    }
}

/// Prints `value` as indented JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct Launch: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start an image set in flexosd and return at once with its name.")

    @Argument(help: "An image set folder (from flexosctl build), its manifest.json, or a guest ELF.")
    var imageSet: String

    @Option(help: "The name to give it (default: the image set's own, made unique).")
    var name: String?

    @Option(
        parsing: .unconditional, help: "Private memory of each compartment, e.g. 64M.",
        transform: CommandLineValues.parseByteCount)
    var memory: UInt64?

    @Option(
        parsing: .unconditional, help: "Shared memory of the image set, e.g. 16M.",
        transform: CommandLineValues.parseByteCount)
    var sharedMemory: UInt64?

    @Option(
        parsing: .unconditional,
        help: "Stop it after this long, e.g. 10s or 5m (default: it runs until it ends or is stopped).",
        transform: CommandLineValues.parseSeconds)
    var timeout: Double?

    @Option(
        parsing: .singleValue,
        help: ArgumentHelp(
            "Listen on this TCP address for the image set's network device, e.g. 127.0.0.1:6379 (repeatable; port 0 picks a free port, which `list` shows).",
            valueName: "host:port"), transform: CommandLineValues.parseListenAddress)
    var listen: [ListenAddress] = []

    @Option(
        parsing: .unconditional,
        help:
            "Close a client connection of its network device that sends and receives nothing this long, e.g. 300s (the default); 0: never.",
        transform: CommandLineValues.parseSecondsOrNever)
    var idleTimeout: Double?

    @Option(
        help: ArgumentHelp(
            "Where it runs: kvm (flexosd's own VMM on /dev/kvm), or qemu (emulated, with protection keys; single-VM image sets without a network device). Default: the first of them that can run it here. libvirt goes with --connect.",
            valueName: "kvm|qemu|libvirt"))
    var engine: EngineKind?

    @Option(
        help: ArgumentHelp(
            "Run it as a transient domain of this libvirt host, e.g. qemu:///system (engine libvirt: QEMU's emulation, single-VM image sets; a host on this machine).",
            valueName: "URI"))
    var connect: String?

    @Flag(
        help:
            "Wake its compartments and network device with hypercalls (an exit to flexosd each) instead of doorbells KVM signals in the kernel: the fallback, to compare with."
    )
    var noDoorbells = false

    @Flag(
        help:
            "Let an idle compartment wait in flexosd (the wait hypercall, an exit each) instead of halting its vCPU in the kernel until a doorbell's interrupt: the fallback, to compare with."
    )
    var noKernelSleep = false

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        let request = LaunchRequest(
            path: URL(fileURLWithPath: imageSet).standardized.path, name: name,
            memory: memory, sharedMemory: sharedMemory, timeout: timeout,
            listen: listen.isEmpty ? nil : listen.map(\.description), idleTimeout: idleTimeout, engine: engine,
            connect: connect, doorbells: noDoorbells ? false : nil, kernelSleep: noKernelSleep ? false : nil)
        let status = try await talkingToDaemon { () async throws(ClientError) in
            try await daemon.client.send(.POST, ControlAPIPaths.imageSets, body: request, as: ImageSetStatus.self)
        }
        if daemon.json { return try printJSON(status) }
        // The name alone on standard output (scripts read it); which engine, when flexosd chose, on standard error.
        if engine == nil, let chosen = status.engine, chosen != EngineKind.kvm.rawValue,
            let reason = status.engineReason
        {
            FileHandle.standardError.write(Data("flexosctl: \(status.name) runs on \(chosen): \(reason)\n".utf8))
        }
        print(status.name)
    }
}

struct List: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Show running and finished image sets.")

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        let sets = try await talkingToDaemon { () async throws(ClientError) in
            try await daemon.client.send(.GET, ControlAPIPaths.imageSets, as: [ImageSetStatus].self)
        }
        if daemon.json { return try printJSON(sets) }
        guard !sets.isEmpty else { return print("no image sets (start one with `flexosctl launch`)") }
        let rows =
            [["NAME", "STATE", "STATUS", "MECHANISM", "ENGINE", "COMPARTMENTS", "TIME", "LISTENING", "PATH"]]
            + sets.map { set in
                [
                    set.name, set.state, set.exitStatus.map(String.init) ?? "-", set.mechanism, set.whereItRuns,
                    "\(set.compartments.count)", formatSeconds(set.seconds),
                    set.listening.map { $0.isEmpty ? "-" : $0.joined(separator: ",") } ?? "-", set.path
                ]
            }
        printTable(rows)
    }
}

struct Stop: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop a running image set (its VMs end; its report and logs stay).")

    @Argument(help: "The image set's name.")
    var name: String

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        let status = try await talkingToDaemon { () async throws(ClientError) in
            try await daemon.client.send(.POST, ControlAPIPaths.imageSet(name) + "/stop", as: ImageSetStatus.self)
        }
        if daemon.json { try printJSON(status) } else { print("\(status.name): \(status.state)") }
    }
}

struct Remove: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Forget an image set that has ended.")

    @Argument(help: "The image set's name.")
    var name: String

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        _ = try await talkingToDaemon { () async throws(ClientError) in
            try await daemon.client.send(.DELETE, ControlAPIPaths.imageSet(name))
        }
        if daemon.json { try printJSON(["removed": name]) } else { print("removed \(name)") }
    }
}

struct Logs: DaemonCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print an image set's console output, per compartment.",
        discussion:
            "Lines start with their compartment when the image set has several VMs; a fault report the monitor added starts with [flexosd]."
    )

    @Argument(help: "The image set's name.")
    var name: String

    @Flag(name: .shortAndLong, help: "Keep printing new output until the image set ends.")
    var follow = false

    @Option(help: "Only this compartment's output.")
    var compartment: String?

    @OptionGroup var daemon: DaemonOptions

    func perform() async throws {
        var query = ["follow=\(follow)"]
        if let compartment { query.append("compartment=\(ControlAPIPaths.escaped(compartment))") }
        if daemon.json { query.append("format=json") }
        let path = ControlAPIPaths.imageSet(name) + "/logs?" + query.joined(separator: "&")
        try await talkingToDaemon { () async throws(ClientError) in
            try await daemon.client.stream(path) { bytes in FileHandle.standardOutput.write(Data(bytes)) }
        }
    }
}

/// Prints rows as columns, padded to the widest cell.
func printTable(_ rows: [[String]]) {
    let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(
            zip(row, widths).enumerated().map { index, cell in
                index == row.count - 1 ? cell.0 : cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  "))
    }
}

extension EngineKind: ExpressibleByArgument {}

extension ImageSetStatus {
    /// "kvm", "qemu", or "libvirt qemu:///system".
    var whereItRuns: String { ([engine ?? "-"] + (host.map { [$0] } ?? [])).joined(separator: " ") }
}
