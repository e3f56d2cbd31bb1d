import CKVM
import Glibc

/// An eventfd: a counter one thread bumps to wake another that polls it.
public final class EventNotifier: @unchecked Sendable {
    public let fd: OwnedFileDescriptor

    public init() throws(KVMError) {
        let raw = ckvm_eventfd()
        if raw < 0 { throw KVMError.systemCallFailed("eventfd", .current) }
        fd = OwnedFileDescriptor(raw)
    }

    public func signal() {
        var one: UInt64 = 1
        _ = write(fd.rawValue, &one, 8)
    }

    /// Resets the counter; true if it had been signalled.
    public func consume() -> Bool { consumeCount() > 0 }

    /// Resets the counter and returns it: how often it was signalled since (0: not at all).
    public func consumeCount() -> UInt64 {
        var value: UInt64 = 0
        return read(fd.rawValue, &value, 8) == 8 ? value : 0
    }
}
