import Glibc

/// Why the network device could not be set up.
public enum NetworkDeviceError: Error, Equatable, Sendable, CustomStringConvertible {
    case listenFailed(String, errno: Int32)
    case ioUringFailed(errno: Int32)
    case memoryFailed(String)

    public var description: String {
        switch self {
        case .listenFailed(let address, let code):
            return "cannot listen on \(address): \(String(cString: strerror(code)))"
        case .ioUringFailed(let code):
            return "cannot set up io_uring for the network device: \(String(cString: strerror(code)))"
                + (code == EPERM || code == ENOSYS
                    ? " (io_uring is disabled on this host: see /proc/sys/kernel/io_uring_disabled)" : "")
        case .memoryFailed(let reason):
            return "cannot allocate the network device's memory: \(reason)"
        }
    }
}
