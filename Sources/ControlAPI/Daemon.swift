import ControlClient
import Dispatch
import FoundationEssentials
import Glibc
import GuestMachine
import Hummingbird
import Logging
import Monitor
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Why the daemon could not start.
public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
}

/// flexosd serving its control API on a Unix socket until SIGTERM or SIGINT.
///
/// Start-up and shutdown are swift-service-lifecycle's: on a signal the registry stops
/// every image set first (which also ends every followed log), then the HTTP server
/// drains and closes, then the socket file is removed.
public struct Daemon {
    public var socketPath: String
    /// A group whose members may use the socket too (mode 0660); otherwise only the owner (0600).
    public var socketGroup: String?
    /// What launches run on (flexosd serve: KVM, then QEMU).
    public var engines: [any ImageSetEngine]
    /// Seconds a connection may stay silent, with no request under way, before it is closed.
    public var idleTimeout: Double
    public var logger: Logger
    public static let defaultIdleTimeout: Double = 30

    /// Whether socket-group members may listen beyond the loopback and below port 1024.
    public var othersMayListenAnywhere = false

    public init(
        socketPath: String, socketGroup: String?, engines: [any ImageSetEngine],
        idleTimeout: Double = Daemon.defaultIdleTimeout, logger: Logger
    ) {
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.engines = engines
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    public func run() async throws {
        try claimSocketPath()
        protectFromTheOOMKiller()
        // Launches run on this pool (they block on files and KVM): start its threads now,
        // so the daemon's thread count is steady from the first request on.
        try await NIOThreadPool.singleton.runIfActive {}
        let groupID = try socketGroup.map(lookUpGroup)
        let metrics = DaemonMetrics()
        let logger = self.logger
        let registry = ImageSetRegistry(engines: engines) { status, report in
            metrics.ended(status)
            logger.info(
                "image set ended",
                metadata: ["name": "\(status.name)", "outcome": "\(status.state)", "status": "\(report.exitStatus)"])
        }
        // Sockets are created owner-only; nothing else this process creates is a file.
        umask(0o177)
        let socketPath = self.socketPath
        let server = Application(
            router: ControlRoutes(
                registry: registry, metrics: metrics, othersMayListenAnywhere: othersMayListenAnywhere
            ).router(),
            // A client that opens a connection and sends nothing (or stops half-way) is
            // cut off instead of holding a connection for ever.
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(idleTimeout * 1000)))),
            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "flexosd"),
            onServerRunning: { _ in
                if let groupID {
                    _ = chown(socketPath, uid_t.max, groupID)
                    _ = chmod(socketPath, 0o660)
                }
                logger.info("flexosd is serving its control API", metadata: ["socket": "\(socketPath)"])
            },
            logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server), .init(service: RegistryService(registry: registry, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        defer { unlink(socketPath) }
        try await group.run()
        logger.info("flexosd stopped")
    }

    /// Refuses to start over a live daemon; removes a stale socket file left by a dead one.
    private func claimSocketPath() throws {
        var status = stat()
        guard lstat(socketPath, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else {
            throw DaemonError(
                description: "\(socketPath) exists and is not a socket; remove it or choose another --socket")
        }
        if ControlClient.isListening(socketPath) {
            throw DaemonError(description: "another flexosd is already serving on \(socketPath)")
        }
        unlink(socketPath)
    }

    /// Every image set's memory is this process's: when the host runs short, the kernel is
    /// asked to pick another victim first than the daemon that holds them all.
    private func protectFromTheOOMKiller() {
        let score = "-500\n"
        let fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)
        guard fd >= 0, write(fd, score, score.utf8.count) == score.utf8.count else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            logger.notice(
                "flexosd could not lower its OOM score (/proc/self/oom_score_adj: \(reason); lowering it takes CAP_SYS_RESOURCE): under memory pressure the kernel may pick it, and every image set with it"
            )
            return
        }
        close(fd)
    }

    private func lookUpGroup(_ name: String) throws -> gid_t {
        if let group = getgrnam(name) { return group.pointee.gr_gid }
        if let number = gid_t(name) { return number }
        throw DaemonError(description: "there is no group \(name) for --socket-group")
    }
}

/// Stops every image set when the daemon shuts down, before the server closes.
struct RegistryService: Service {
    let registry: ImageSetRegistry
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let running = registry.runningCount
        logger.info("shutting down: stopping image sets", metadata: ["running": "\(running)"])
        // Stopping joins vCPU threads: do it off the cooperative thread pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                registry.stopAll(reason: "flexosd is shutting down")
                done.resume()
            }
        }
    }
}
