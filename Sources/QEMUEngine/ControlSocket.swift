import Glibc
import GuestMachine
import KVM

/// The Unix socket the shim's control port (COM2) connects to. flexosd listens before QEMU
/// starts, whoever starts it (flexosd itself, or libvirt's QEMU user: the socket is open to
/// every user, so a connection is taken only from the QEMU process whose id the run gives).
final class ControlSocket: @unchecked Sendable {
    let path: String
    private let listener: OwnedFileDescriptor

    init(path: String) throws(LaunchError) {
        self.path = path
        listener = OwnedFileDescriptor(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard listener.rawValue >= 0, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw LaunchError.cannotWrite(
                path: path, reason: "no socket for the shim's control port here (a path of at most 107 bytes)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener.rawValue, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard bound, chmod(path, 0o666) == 0, listen(listener.rawValue, 4) == 0 else {
            throw LaunchError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Waits for the QEMU process `peer()` names to connect (nil while it is not known yet);
    /// anyone else's connection is closed. Nil once `over()` says the run has ended.
    func accept(from peer: () -> pid_t?, until over: () -> Bool) -> OwnedFileDescriptor? {
        while !over() {
            var poll = pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 100) > 0 else { continue }
            let raw = Glibc.accept(listener.rawValue, nil, nil)
            guard raw >= 0 else { continue }
            let connection = OwnedFileDescriptor(raw)
            _ = fcntl(raw, F_SETFD, FD_CLOEXEC)
            var credentials = PeerCredentials(pid: 0, uid: 0, gid: 0)
            var length = socklen_t(MemoryLayout<PeerCredentials>.size)
            guard getsockopt(raw, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { continue }
            while peer() == nil && !over() { usleep(10_000) }
            if credentials.pid == peer() { return connection }
        }
        return nil
    }
}

/// `struct ucred` of <sys/socket.h> (which Swift's Glibc module leaves out without _GNU_SOURCE).
private struct PeerCredentials {
    var pid: pid_t
    var uid: uid_t
    var gid: gid_t
}
