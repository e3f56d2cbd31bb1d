import CKVM
import Glibc

/// A file descriptor this process owns: closed exactly once, when the last reference goes.
///
/// Every kernel object the monitor creates (the KVM device, VMs, vCPUs, memfds, eventfds,
/// stats fds) is held by one of these, so a failure half-way through set-up releases
/// everything created so far.
public final class OwnedFileDescriptor: @unchecked Sendable {
    public let rawValue: Int32

    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    deinit { _ = Glibc.close(rawValue) }
}

/// Calls `ioctl(2)` and names the request in the error if it fails.
///
/// A set-up request interrupted by a signal did nothing and is made again: KVM_CREATE_VM, for
/// one, answers EINTR whenever a signal is pending while it registers its MMU notifier (seen
/// in CI with many VMs and child processes in one test process). KVM_RUN does not come here:
/// its EINTR is the monitor's kick.
@inline(__always)
func ioctl(_ fd: OwnedFileDescriptor, _ request: UInt, _ argument: UInt = 0, name: @autoclosure () -> String)
    throws(KVMError) -> Int32
{
    while true {
        let result = ckvm_ioctl(fd.rawValue, request, argument)
        if result != -1 { return result }
        if errno != EINTR { throw KVMError.ioctlFailed(name(), .current) }
    }
}

/// Calls `ioctl(2)` with a pointer to `value` as the argument.
@inline(__always)
func ioctl<T>(_ fd: OwnedFileDescriptor, _ request: UInt, _ value: inout T, name: @autoclosure () -> String)
    throws(KVMError) -> Int32
{
    try withUnsafeMutablePointer(to: &value) { (pointer) throws(KVMError) -> Int32 in
        try ioctl(fd, request, UInt(bitPattern: pointer), name: name())
    }
}
