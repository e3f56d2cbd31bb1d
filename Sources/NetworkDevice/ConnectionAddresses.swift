import CFlexOSABI
import Glibc

/// A connection's two ends as the guest reads them (flexos_abi.h, struct
/// flexos_net_addresses): what CLIENT LIST shows as addr and laddr.
extension flexos_net_addresses {
    init(of fd: Int32) {
        self.init(
            peer: flexos_net_address(of: fd, peer: true), local: flexos_net_address(of: fd, peer: false),
            padding: (0, 0, 0))
    }
}

extension flexos_net_address {
    /// The peer's (getpeername) or this end's (getsockname) address of socket `fd`; family 0
    /// when the kernel gives none or one that is not IP.
    init(of fd: Int32, peer: Bool) {
        self.init()
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let known = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                (peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)) == 0
            }
        }
        guard known else { return }
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in.self) }
            set(family: FLEXOS_NET_FAMILY_IPV4, port: address.sin_port, address.sin_addr)
        case AF_INET6:
            let address = withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in6.self) }
            set(family: FLEXOS_NET_FAMILY_IPV6, port: address.sin6_port, address.sin6_addr)
        default:
            return
        }
    }

    /// `port` in network byte order, `address` an in_addr or in6_addr.
    private mutating func set<Address>(family: UInt32, port: UInt16, _ address: Address) {
        self.family = UInt8(family)
        self.port = UInt16(bigEndian: port)
        withUnsafeMutableBytes(of: &bytes) { target in withUnsafeBytes(of: address) { target.copyMemory(from: $0) } }
    }
}
