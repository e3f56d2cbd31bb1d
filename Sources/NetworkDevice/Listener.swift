import CFlexOSABI
import ControlProtocol
import Glibc

/// A listening TCP socket of the network device.
public final class Listener: @unchecked Sendable {
    public let requested: ListenAddress
    /// The address it really listens on (the port the kernel picked for port 0).
    public let boundAddress: ListenAddress
    let fd: Int32

    init(_ address: ListenAddress) throws(NetworkDeviceError) {
        requested = address
        guard var socketAddress = SocketAddress(host: address.host, port: address.port) else {
            throw .listenFailed(address.description + " (not an IP address)", errno: EINVAL)
        }
        let fd = socket(socketAddress.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .listenFailed(address.description, errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &socketAddress.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socketAddress.length) }
        }
        guard bound == 0, listen(fd, 4096) == 0 else {
            let code = errno
            close(fd)
            throw .listenFailed(address.description, errno: code)
        }
        self.fd = fd
        let local = flexos_net_address(of: fd, peer: false)
        boundAddress = ListenAddress(host: address.host, port: local.family != 0 ? local.port : address.port)
    }

    private var closed = false

    /// Stops listening: new connections are refused from now on. Called by the device's
    /// loop when it ends, or at release for a device whose loop never ran (a launch that
    /// failed after the device was made).
    func stop() {
        guard !closed else { return }
        closed = true
        _ = shutdown(fd, Int32(SHUT_RDWR))
        _ = Glibc.close(fd)
    }

    deinit { stop() }
}

/// A socket address for bind(2): IPv4 or IPv6, built from a literal.
struct SocketAddress {
    var storage: sockaddr_storage
    let length: socklen_t
    let family: Int32

    init?(host: String, port: UInt16) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        var storage = sockaddr_storage()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeBytes(of: v4) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            (length, family) = (socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeBytes(of: v6) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            (length, family) = (socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
        } else {
            return nil
        }
        self.storage = storage
    }
}
