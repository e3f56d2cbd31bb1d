import CKVM
import Glibc

/// Host memory that backs guest-physical memory: a memfd mapped into this process.
///
/// A memfd (rather than anonymous memory) lets the same pages be mapped into several
/// VMs, which is how the shared regions of an image set are shared. Pages are allocated
/// by the kernel on first touch, so a large, mostly unused size costs nothing.
public final class GuestMemory: @unchecked Sendable {
    public let size: UInt64
    public let base: UnsafeMutableRawPointer
    let fd: OwnedFileDescriptor

    /// Creates `size` bytes of zeroed memory named `name` (shown in /proc/PID/maps).
    public convenience init(name: String, size: UInt64) throws(KVMError) {
        guard size > 0, size % 4096 == 0, size <= UInt64(Int.max) else { throw KVMError.badMemorySize(size) }
        let rawFD = ckvm_memfd_create(name)
        if rawFD < 0 { throw KVMError.memoryFailed("memfd_create", .current) }
        let fd = OwnedFileDescriptor(rawFD)
        if ftruncate(rawFD, off_t(size)) != 0 { throw KVMError.memoryFailed("ftruncate", .current) }
        try self.init(mapping: fd, size: size)
    }

    /// Maps the first `size` bytes of memory another process made (a QEMU's RAM), shared with it.
    public init(mapping fd: OwnedFileDescriptor, size: UInt64) throws(KVMError) {
        guard size > 0, size % 4096 == 0, size <= UInt64(Int.max) else { throw KVMError.badMemorySize(size) }
        guard let mapping = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0),
            mapping != MAP_FAILED
        else { throw KVMError.memoryFailed("mmap", .current) }
        base = mapping
        self.size = size
        self.fd = fd
    }

    deinit { munmap(base, Int(size)) }

    /// The memfd, for a process that maps the same memory (QEMU opens it through /proc).
    public var fileDescriptor: Int32 { fd.rawValue }

    /// The host address of `length` bytes at `offset`, or nil when the range does not fit.
    public func pointer(at offset: UInt64, length: UInt64) -> UnsafeMutableRawPointer? {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= size else { return nil }
        return base + Int(offset)
    }

    /// Copies `bytes` to `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(KVMError) {
        guard let target = pointer(at: offset, length: UInt64(bytes.count)) else {
            throw KVMError.addressOutOfRange(offset, length: UInt64(bytes.count))
        }
        if let source = bytes.baseAddress { target.copyMemory(from: source, byteCount: bytes.count) }
    }
}
