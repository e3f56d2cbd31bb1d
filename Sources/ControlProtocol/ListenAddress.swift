import Glibc

/// An address the monitor listens on for an image set: `127.0.0.1:6379`, `[::1]:6379`,
/// `localhost:0` (port 0: the kernel picks one; `Listener.boundAddress` says which).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether only this machine can reach it: 127.0.0.0/8 or ::1.
    public var isLoopback: Bool { host.hasPrefix("127.") || host == "::1" }

    /// Whether binding it takes privilege: a port below 1024 (0 picks an unprivileged one).
    public var isPrivilegedPort: Bool { port != 0 && port < 1024 }

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; the host is an IPv4 or IPv6 literal or `localhost`.
    public static func parse(_ text: String) throws(ListenAddressError) -> ListenAddress {
        guard let colon = text.lastIndex(of: ":") else { throw .badAddress(text, reason: "it has no port") }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = UInt16(portText) else {
            throw .badAddress(text, reason: "the port must be a number from 0 to 65535")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        guard ListenAddress.isIPLiteral(host) else {
            throw .badAddress(text, reason: "`\(host)` is not an IP address")
        }
        return ListenAddress(host: host, port: port)
    }

    /// Whether `host` is an IPv4 or IPv6 literal.
    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// A listen address a user mistyped, and how to write one.
public enum ListenAddressError: Error, Equatable, Sendable, CustomStringConvertible {
    case badAddress(String, reason: String)

    public var description: String {
        switch self {
        case .badAddress(let text, let reason):
            return
                "`\(text)` is not an address to listen on: \(reason) (write HOST:PORT, e.g. 127.0.0.1:6379 or [::1]:6379)"
        }
    }
}
