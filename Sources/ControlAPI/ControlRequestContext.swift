import Glibc
import Hummingbird
import Monitor
import NIOCore

/// The request context of the control API: Hummingbird's, plus who is asking.
struct ControlRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The connected process's user and group (SO_PEERCRED); nil when they could not be read.
    let caller: FileAccessIdentity?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        caller = ControlRequestContext.peerCredentials(of: source.channel)
    }

    /// Launch requests are a few hundred bytes.
    var maxUploadSize: Int { 64 * 1024 }

    /// The credentials of the process at the other end of a Unix socket. The context is
    /// made on the channel's event loop, where the socket option is read at once.
    private static func peerCredentials(of channel: any Channel) -> FileAccessIdentity? {
        guard let provider = channel as? any SocketOptionProvider, channel.eventLoop.inEventLoop else { return nil }
        let read: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        nonisolated(unsafe) var credentials: PeerCredentials?
        read.whenSuccess { credentials = $0 }
        return credentials.map { FileAccessIdentity(uid: $0.uid, gid: $0.gid) }
    }
}

/// `struct ucred` of <sys/socket.h> (which Swift's Glibc module leaves out without _GNU_SOURCE).
private struct PeerCredentials {
    var pid: pid_t
    var uid: uid_t
    var gid: gid_t
}
