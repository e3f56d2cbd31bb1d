import Glibc
import GuestImage
import KVM

/// Why an image set could not be launched. Nothing of it is left running when one is thrown.
public enum LaunchError: Error, CustomStringConvertible {
    case kvm(KVMError)
    case image(ImageError)
    case notFound(path: String)
    case memoryTooSmall(UInt64, minimum: UInt64)
    case memoryTooLarge(UInt64, maximum: UInt64, mechanism: Mechanism?)
    case sharedMemoryTooSmall(UInt64, minimum: UInt64)
    case sharedMemoryTooLarge(UInt64, maximum: UInt64)
    case sizeNotPageMultiple(what: String, size: UInt64)
    case badRegion(name: String, start: UInt64, reason: String)
    case pageTables(PageTableError)
    case mechanismUnavailable(Mechanism, reason: String)
    case threadFailed(Errno)
    case cannotActAs(uid: uid_t)
    case confinementFailed(Errno)
    /// A device could not be set up (its own words).
    case device(String)
    /// The image set declares a device this engine does not provide.
    case deviceMissing(DeviceKind, imageSet: String)
    case noNetworkDevice(imageSet: String, address: String)
    /// The QEMU engine lacks something it needs (QEMU, the shim, a temporary folder).
    case engineMissing(String)
    /// Writing the guest's memory (page tables, boot info, image) went outside it.
    case guestMemory(String)
    /// A file an engine hands its emulator could not be written.
    case cannotWrite(path: String, reason: String)
    /// The host an engine runs the set on refused or failed (a libvirt host).
    case hostFailed(String)

    public var description: String {
        switch self {
        case .kvm(let error): return error.description
        case .image(let error): return error.description
        case .notFound(let path):
            return "\(path) does not exist (give an image set folder, its manifest.json or a guest ELF)"
        case .memoryTooSmall(let size, let minimum):
            return
                "memory size \(formatBytes(size)) is too small: each compartment needs at least \(formatBytes(minimum)) for its \(formatBytes(ImageSetLayout.stackSize)) stack and its heap"
        case .memoryTooLarge(let size, let maximum, let mechanism):
            return
                "memory size \(formatBytes(size)) is too large: a compartment can have at most \(formatBytes(maximum))"
                + (mechanism.map { " under \($0.rawValue)" } ?? "")
        case .sharedMemoryTooSmall(let size, let minimum):
            return
                "shared memory size \(formatBytes(size)) is too small for this image set: it needs at least \(formatBytes(minimum))"
        case .sharedMemoryTooLarge(let size, let maximum):
            return
                "shared memory size \(formatBytes(size)) is too large: an image set's shared area holds at most \(formatBytes(maximum))"
        case .sizeNotPageMultiple(let what, let size):
            return
                "\(what) size of \(size) bytes is not a multiple of the \(formatBytes(GuestLayout.pageSize)) page size"
        case .badRegion(let name, let start, let reason):
            return "the image's region \(name) at \(hex(start)) \(reason)"
        case .pageTables(let error): return "building the guest page tables: \(error)"
        case .mechanismUnavailable(let mechanism, let reason):
            return "cannot launch this \(mechanism.rawValue) image set here: \(reason)"
        case .threadFailed(let errno): return "cannot start a vCPU thread: \(errno)"
        case .confinementFailed(let errno): return "cannot confine a vCPU thread with seccomp: \(errno)"
        case .device(let reason): return reason
        case .deviceMissing(let kind, let name):
            return
                "image set \(name) declares the \(kind.description) (`devices: [\(kind.name)]`), which this engine does not provide"
        case .engineMissing(let what): return what
        case .guestMemory(let reason): return "cannot set up the guest's memory: \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .hostFailed(let reason): return reason
        case .noNetworkDevice(let name, let address):
            return
                "cannot listen on \(address) for image set \(name): it has no network device (no library of it declares `devices: [net]`)"
        case .cannotActAs(let uid):
            return
                "cannot open files with the permissions of user \(uid), who asked for this launch (flexosd needs to run as root to serve other users)"
        }
    }
}

/// "64 MiB", "15.8 MiB", "512 KiB", "4096 bytes": a size as a person reads it.
public func formatBytes(_ bytes: UInt64) -> String {
    for (unit, shift) in [("GiB", UInt64(30)), ("MiB", 20), ("KiB", 10)] where bytes >= 1 << shift {
        if bytes % (1 << shift) == 0 { return "\(bytes >> shift) \(unit)" }
        if shift > 10 { return "\((Double(bytes) / Double(UInt64(1) << shift) * 10).rounded(.down) / 10) \(unit)" }
    }
    return bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) bytes"
}
