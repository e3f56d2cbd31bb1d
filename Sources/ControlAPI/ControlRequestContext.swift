import Glibc
import GuestMachine
import Hummingbird
import Monitor
import NIOCore

/// The request context of the control API: Hummingbird's, plus the connection, so a
/// handler can ask who is at the other end.
struct ControlRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Launch requests are a few hundred bytes.
    var maxUploadSize: Int { 64 * 1024 }

    /// The user and group of the process at the other end of the Unix socket
    /// (SO_PEERCRED, as the kernel recorded them at connect); nil when unreadable.
    func caller() async -> FileAccessIdentity? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let read: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        guard let credentials = try? await read.get() else { return nil }
        return FileAccessIdentity(uid: credentials.uid, gid: credentials.gid)
    }
}

/// `struct ucred` of <sys/socket.h> (which Swift's Glibc module leaves out without _GNU_SOURCE).
private struct PeerCredentials {
    var pid: pid_t
    var uid: uid_t
    var gid: gid_t
}
