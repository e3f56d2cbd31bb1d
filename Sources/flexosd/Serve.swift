import ArgumentParser
import ControlAPI
import ControlClient
import ControlProtocol
import Glibc
import GuestMachine
import KVM
import LibvirtEngine
import Logging
import Monitor
import QEMUEngine

/// `flexosd [serve]`: the daemon, in the foreground.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the control API on a Unix socket (the default).",
        discussion: """
            The socket is created for its owner only (mode 0600), or for a group with --socket-group (0660). SIGTERM or SIGINT stops every image set, removes the socket and exits. Metrics are served in Prometheus text format at GET /metrics on the same socket.
            """)

    @Option(
        help:
            "The Unix socket to serve on (default: $FLEXOSD_SOCKET, /run/flexosd.sock for root, else $XDG_RUNTIME_DIR/flexosd.sock)."
    )
    var socket: String = SocketPath.default

    @Option(help: "A group whose members may use the socket too.")
    var socketGroup: String?

    @Option(help: "The KVM device.")
    var kvm: String = Hypervisor.defaultDevicePath

    @Flag(
        help:
            "Let members of --socket-group launch image sets that listen beyond the loopback or on ports below 1024 (by default only the daemon's own user may)."
    )
    var groupMayListenAnywhere = false

    @Option(
        parsing: .unconditional,
        help: "Close a client connection that stays silent this long with no request under way, e.g. 30s.",
        transform: CommandLineValues.parseSeconds)
    var idleTimeout: Double = Daemon.defaultIdleTimeout

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "'\(logLevel)' is not a log level (trace, debug, info, notice, warning, error, critical)")
        }
    }

    func run() throws {
        acceptTerminationSignals()
        let command = self
        try waitForAsync { try await command.serve() }
    }

    private func serve() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            var daemon = Daemon(
                socketPath: socket, socketGroup: socketGroup,
                engines: [KVMEngine(devicePath: kvm, devices: deviceProviders), QEMUEngine(), LibvirtEngine()],
                idleTimeout: idleTimeout, logger: Logger(label: "flexosd"))
            daemon.othersMayListenAnywhere = groupMayListenAnywhere
            try await daemon.run()
        } catch let error as DaemonError {
            fail(error.description)
        }
    }
}
