/// Why a KVM operation failed, with the failing call and error number so a user can act on it.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// /dev/kvm could not be opened.
    case cannotOpenDevice(path: String, Errno)
    /// The device opened, but it is not KVM (KVM_GET_API_VERSION is not answered).
    case notKVMDevice(path: String)
    /// KVM speaks another API version than the one this monitor was written for.
    case unsupportedAPIVersion(Int32)
    /// A capability the monitor needs is missing.
    case missingCapability(String)
    /// An ioctl failed.
    case ioctlFailed(String, Errno)
    /// memfd_create, ftruncate or mmap failed while setting up guest memory.
    case memoryFailed(String, Errno)
    /// Another system call failed (eventfd, ...).
    case systemCallFailed(String, Errno)
    /// Guest memory of a size that is zero or not a whole number of pages.
    case badMemorySize(UInt64)
    /// A guest-physical range is not backed by this memory.
    case addressOutOfRange(UInt64, length: UInt64)

    public var description: String {
        switch self {
        case .cannotOpenDevice(let path, .noEntry):
            return
                "\(path) does not exist: this host offers no KVM (load kvm_intel, kvm_amd or kvm_pvm, or run on a host with virtualization)"
        case .cannotOpenDevice(let path, .permissionDenied):
            return
                "no permission to open \(path): run as root or add this user to the group that owns it (usually 'kvm')"
        case .cannotOpenDevice(let path, let errno):
            return "cannot open \(path): \(errno)"
        case .notKVMDevice(let path):
            return "\(path) is not the KVM device (it does not answer KVM_GET_API_VERSION); give the path of /dev/kvm"
        case .unsupportedAPIVersion(let version):
            return "KVM reports API version \(version); this monitor needs version 12"
        case .missingCapability(let name):
            return "this host's KVM lacks \(name), which the monitor needs"
        case .ioctlFailed(let name, let errno):
            return "\(name) failed: \(errno)"
        case .memoryFailed(let call, let errno):
            return "guest memory: \(call) failed: \(errno)"
        case .systemCallFailed(let call, let errno):
            return "\(call) failed: \(errno)"
        case .badMemorySize(let size):
            return "guest memory of \(size) bytes: the size must be a positive multiple of 4096"
        case .addressOutOfRange(let address, let length):
            return "guest range 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is outside guest memory"
        }
    }
}
