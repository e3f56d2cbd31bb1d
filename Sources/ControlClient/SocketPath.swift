import Glibc

/// Where flexosd listens and flexosctl connects, unless told otherwise: $FLEXOSD_SOCKET,
/// else /run/flexosd.sock for root and $XDG_RUNTIME_DIR/flexosd.sock (or /tmp) for others.
public enum SocketPath {
    public static var `default`: String {
        if let explicit = getenv("FLEXOSD_SOCKET").map({ String(cString: $0) }), !explicit.isEmpty { return explicit }
        if getuid() == 0 { return "/run/flexosd.sock" }
        let runtime = getenv("XDG_RUNTIME_DIR").map { String(cString: $0) } ?? "/tmp"
        return runtime + "/flexosd.sock"
    }
}
