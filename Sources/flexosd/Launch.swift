import ArgumentParser
import ControlProtocol
import FoundationEssentials
import Glibc
import GuestMachine
import KVM
import Monitor
import QEMUEngine
import Synchronization

/// `flexosd launch` (alias `run`): boots one image set in the foreground and exits with its exit code.
struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Boot an image set, stream its console, and exit with the guest's exit code.",
        discussion: """
            IMAGE-SET is a folder written by `flexosctl build`, its manifest.json, or a guest ELF (which then runs as one compartment). `flexosd run` is another name for this command.

            Exit status: the guest's exit code when it exits; 124 when --timeout stopped it; 134 when it panicked; 139 when it faulted (a report is printed); 1 when it could not be launched.
            A process exit status holds 8 bits, so a guest's exit code is seen modulo 256 (256 exits as 0, 124 from the guest looks like a timeout): with --json, the report's `outcome` and `guestExitCode` are authoritative.
            """,
        aliases: ["run"])

    @Argument(help: "The image set to boot.")
    var imageSet: String

    @Option(
        parsing: .unconditional, help: "Private memory of each compartment, e.g. 64M or 1G.",
        transform: CommandLineValues.parseByteCount)
    var memory: UInt64 = ImageSetLayout.defaultMemory

    @Option(
        parsing: .unconditional, help: "Shared memory of the image set, e.g. 16M.",
        transform: CommandLineValues.parseByteCount)
    var sharedMemory: UInt64 = ImageSetLayout.defaultSharedMemory

    @Option(
        parsing: .unconditional, help: "Stop the guest after this long, e.g. 10s or 500ms.",
        transform: CommandLineValues.parseSeconds)
    var timeout: Double?

    @Option(
        parsing: .singleValue,
        help: ArgumentHelp(
            "Listen on this TCP address for the image set's network device, e.g. 127.0.0.1:6379 (repeatable; port 0 picks a free port).",
            valueName: "host:port"), transform: CommandLineValues.parseListenAddress)
    var listen: [ListenAddress] = []

    @Option(
        parsing: .unconditional,
        help:
            "Close a client connection of the network device that sends and receives nothing this long, e.g. 300s; 0: never.",
        transform: CommandLineValues.parseSecondsOrNever)
    var idleTimeout: Double = LaunchOptions.defaultClientIdleTimeout

    @Flag(help: "Print a JSON report when the run ends (the guest's console then goes to standard error).")
    var json = false

    @Flag(
        help:
            "Wake compartments and the network device with hypercalls (an exit to flexosd each) instead of doorbells KVM signals in the kernel: the fallback, to compare with."
    )
    var noDoorbells = false

    @Flag(
        help:
            "Let an idle compartment wait in flexosd (the wait hypercall, an exit each) instead of halting its vCPU in the kernel until a doorbell's interrupt: the fallback, to compare with."
    )
    var noKernelSleep = false

    @Option(
        parsing: .unconditional,
        help:
            "How long KVM polls a halted vCPU for its wake before its thread sleeps, e.g. 200us; 0: never. Polling catches a wake sooner and costs the CPU it spins.",
        transform: CommandLineValues.parseHaltPolling)
    var haltPolling: UInt64 = LaunchOptions().haltPolling

    @Option(help: "The KVM device (default /dev/kvm); naming one runs the set on KVM.")
    var kvm: String?

    @Option(
        help: ArgumentHelp(
            "Where the image set runs: kvm (/dev/kvm), or qemu (qemu-system-x86_64 -accel tcg -cpu max: emulated, slow, with protection keys; single-VM image sets without a network device). Default: the first of them that can run it here.",
            valueName: "kvm|qemu"))
    var engine: EngineKind?

    func run() throws {
        // Held here, so that every thread the launch starts holds them too and one thread
        // takes them (stopOnTerminationSignals).
        holdTerminationSignals()
        let report: RunReport
        do {
            let set = try ImageSet.open(imageSet)
            let console = TerminalConsole(
                descriptor: json ? 2 : 1,
                prefixed: set.manifest.mechanism.isolation.vmPerCompartment && set.manifest.compartments.count > 1)
            var options = LaunchOptions(
                memory: memory, sharedMemory: sharedMemory, listen: listen, clientIdleTimeout: idleTimeout)
            options.doorbells = !noDoorbells
            options.sleepInKernel = !noKernelSleep
            options.haltPolling = haltPolling
            let choice = try EngineChoice(
                among: [
                    KVMEngine(devicePath: kvm ?? Hypervisor.defaultDevicePath, devices: deviceProviders), QEMUEngine()
                ],
                asked: engine ?? (kvm == nil ? nil : .kvm), for: set.manifest)
            if engine == nil, choice.engine.kind != .kvm, let reason = choice.reason {
                printError("flexosd: runs on \(choice.engine.kind.rawValue): \(reason)")
            }
            let run = try choice.engine.launch(set, options: options, console: console)
            stopOnTerminationSignals(run)
            announceListeners(
                run.listening, of: set.manifest.name, hasDevice: set.manifest.library(holding: .network) != nil)
            report = run.wait(timeout: timeout)
        } catch let error as LaunchError {
            fail(error.description)
        } catch let error as EngineChoice.Failure {
            fail(error.description)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            if let message = report.message { printError(message) }
            printError(report.summary().split(separator: "\n").map { "flexosd: " + $0 }.joined(separator: "\n"))
        }
        throw ExitCode(report.exitStatus)
    }
}

/// Says where clients reach the image set (the real port when 0 was asked for).
private func announceListeners(_ addresses: [String], of name: String, hasDevice: Bool) {
    guard hasDevice else { return }
    if addresses.isEmpty {
        printError("flexosd: \(name) has a network device but no --listen address: no client can reach it")
    }
    for address in addresses { printError("flexosd: \(name) listening on \(address)") }
}

/// Prints `message` to standard error as flexosd and exits with status 1.
func fail(_ message: String) -> Never {
    printError("flexosd: error: " + message)
    exit(1)
}

func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Console output straight to a terminal or pipe. When an image set has several VMs,
/// each line starts with the name of the compartment that wrote it.
final class TerminalConsole: ConsoleSink, @unchecked Sendable {
    private let descriptor: Int32
    private let prefixer: Mutex<LinePrefixer>

    init(descriptor: Int32, prefixed: Bool) {
        self.descriptor = descriptor
        prefixer = Mutex(LinePrefixer(enabled: prefixed))
    }

    func write(_ bytes: [UInt8], compartment: String, index: Int) {
        prefixer.withLock { prefixer in
            let output = prefixer.prefix(bytes, compartment: compartment)
            output.withUnsafeBytes { _ = Glibc.write(descriptor, $0.baseAddress, $0.count) }
        }
    }
}

/// The signals that end flexosd.
private var terminationSignals: sigset_t {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
    return signals
}

/// Unblocks the signals that end flexosd: a process inherits its parent's signal mask, and
/// a parent that blocked SIGTERM in the thread that started flexosd left it deaf to stop
/// requests (it ran on until its timeout).
func acceptTerminationSignals() {
    var signals = terminationSignals
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}

/// Blocks the signals that end flexosd in this thread (and the threads it starts), for
/// `stopOnTerminationSignals` to take them: whatever mask the parent left, they are waited for.
func holdTerminationSignals() {
    var signals = terminationSignals
    pthread_sigmask(SIG_BLOCK, &signals, nil)
}

/// Stops `run` when flexosd is asked to end (SIGTERM, SIGINT, SIGHUP): the set ends as
/// `stopped` (exit status 143) with its report, as `flexosctl stop` ends a daemon's set,
/// instead of flexosd dying with its VMs and without a word.
func stopOnTerminationSignals(_ run: any RunningImageSet) {
    do {
        _ = try MonitorThread(name: "signals", detached: true) {
            var signals = terminationSignals
            var received: Int32 = 0
            guard sigwait(&signals, &received) == 0 else { return }
            run.stop(reason: "flexosd received \(String(cString: strsignal(received)))")
        }
    } catch {
        // No thread for it: the signals end flexosd as they did before.
        acceptTerminationSignals()
    }
}

extension EngineKind: ExpressibleByArgument {}
