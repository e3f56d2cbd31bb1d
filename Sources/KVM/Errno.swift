import Glibc

/// An error number from a failed system call, with the C library's text for it.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    public static let noEntry = Errno(rawValue: ENOENT)
    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let invalidArgument = Errno(rawValue: EINVAL)

    public var description: String { String(cString: strerror(rawValue)) }
}

/// Runs a system call that returns -1 on failure, turning -1 into the current `errno`.
@inline(__always)
func valueOrErrno<T: BinaryInteger>(_ result: T) -> Result<T, Errno> {
    result == -1 ? .failure(.current) : .success(result)
}
