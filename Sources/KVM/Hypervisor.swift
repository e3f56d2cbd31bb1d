import CKVM
import Glibc

/// The host's KVM: the opened /dev/kvm, checked once for everything the monitor needs.
///
/// Set-up reads as one straight sequence (Firecracker's habit): open the device, check
/// the API version and each needed capability, reporting the first one missing.
public final class Hypervisor: @unchecked Sendable {
    public static let defaultDevicePath = "/dev/kvm"

    let device: OwnedFileDescriptor
    /// Size of the per-vCPU `struct kvm_run` mapping.
    let vcpuMmapSize: Int
    /// The CPUID entries KVM supports, given to every vCPU.
    let supportedCPUID: [kvm_cpuid_entry2]
    /// How many memory slots a VM may have.
    public let memorySlotLimit: Int

    /// Opens and checks KVM. The error says what to do when there is no /dev/kvm or no permission.
    public init(devicePath: String = Hypervisor.defaultDevicePath) throws(KVMError) {
        let fd = open(devicePath, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 { throw KVMError.cannotOpenDevice(path: devicePath, .current) }
        device = OwnedFileDescriptor(fd)

        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFCHR else {
            throw KVMError.notKVMDevice(path: devicePath)
        }
        let version: Int32
        do { version = try ioctl(device, CKVM_GET_API_VERSION, name: "KVM_GET_API_VERSION") } catch {
            throw KVMError.notKVMDevice(path: devicePath)
        }
        guard version == 12 else { throw KVMError.unsupportedAPIVersion(version) }
        for (capability, name) in [
            (CKVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"),
            (CKVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT")
        ] {
            if try Hypervisor.check(device, capability) <= 0 { throw KVMError.missingCapability(name) }
        }
        vcpuMmapSize = Int(try ioctl(device, CKVM_GET_VCPU_MMAP_SIZE, name: "KVM_GET_VCPU_MMAP_SIZE"))
        memorySlotLimit = Int(try Hypervisor.check(device, CKVM_CAP_NR_MEMSLOTS))
        hasBinaryStats = try Hypervisor.check(device, CKVM_CAP_BINARY_STATS_FD) > 0
        offersDoorbells = try Hypervisor.check(device, CKVM_CAP_IOEVENTFD) > 0
        supportedCPUID = try Hypervisor.readSupportedCPUID(device)
        // KVM_CAP_XSAVE2 answers the size of a vCPU's XSAVE state when it exceeds struct kvm_xsave.
        xsaveSize = max(MemoryLayout<kvm_xsave>.size, Int((try? Hypervisor.check(device, CKVM_CAP_XSAVE2)) ?? 0))
    }

    /// Bytes of a vCPU's XSAVE state (KVM_GET_XSAVE2), at least a `struct kvm_xsave`.
    let xsaveSize: Int

    /// Where PKRU sits in the (standard-format) XSAVE state: CPUID.(EAX=0DH,ECX=9):EBX.
    var protectionKeyStateOffset: Int {
        supportedCPUID.first { $0.function == 0xD && $0.index == 9 && $0.ebx != 0 }.map { Int($0.ebx) } ?? 2688
    }

    /// Whether KVM can hand out binary statistics (KVM_GET_STATS_FD).
    public let hasBinaryStats: Bool

    /// Whether KVM turns a guest's store to an address into an eventfd signal in the kernel,
    /// with no exit to the monitor (KVM_CAP_IOEVENTFD): what doorbells need.
    public let offersDoorbells: Bool

    /// Creates an empty VM (KVM_CREATE_VM).
    public func createVirtualMachine() throws(KVMError) -> VirtualMachine {
        let fd = try ioctl(device, CKVM_CREATE_VM, 0, name: "KVM_CREATE_VM")
        return VirtualMachine(fd: OwnedFileDescriptor(fd), hypervisor: self)
    }

    static func check(_ device: OwnedFileDescriptor, _ capability: Int32) throws(KVMError) -> Int32 {
        try ioctl(device, CKVM_CHECK_EXTENSION, UInt(capability), name: "KVM_CHECK_EXTENSION")
    }

    /// Whether KVM can give guests protection keys (CPUID.(EAX=7,ECX=0):ECX bit 3, PKU):
    /// what the intel-mpk mechanism needs. PVM hosts never offer it.
    public var offersProtectionKeys: Bool {
        supportedCPUID.contains { $0.function == 7 && $0.index == 0 && $0.ecx & (1 << 3) != 0 }
    }

    /// KVM_GET_SUPPORTED_CPUID, growing the buffer while KVM answers E2BIG.
    static func readSupportedCPUID(_ device: OwnedFileDescriptor) throws(KVMError) -> [kvm_cpuid_entry2] {
        var capacity = 64
        while true {
            var buffer = CPUIDBuffer(capacity: capacity)
            let result = buffer.withHeader { header in
                ckvm_ioctl(device.rawValue, CKVM_GET_SUPPORTED_CPUID, UInt(bitPattern: header))
            }
            if result == 0 { return buffer.entries }
            if errno == E2BIG && capacity < 4096 {
                capacity *= 2
                continue
            }
            throw KVMError.ioctlFailed("KVM_GET_SUPPORTED_CPUID", .current)
        }
    }
}

/// A `struct kvm_cpuid2` with room for `capacity` entries after its header.
struct CPUIDBuffer {
    private var storage: [UInt8]

    init(capacity: Int) {
        storage = [UInt8](
            repeating: 0, count: MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride)
        withHeader { $0.pointee.nent = UInt32(capacity) }
    }

    init(entries: [kvm_cpuid_entry2]) {
        self.init(capacity: entries.count)
        storage.withUnsafeMutableBytes { bytes in
            let first = bytes.baseAddress! + MemoryLayout<kvm_cpuid2>.size
            first.bindMemory(to: kvm_cpuid_entry2.self, capacity: entries.count)
                .update(from: entries, count: entries.count)
        }
    }

    mutating func withHeader<R>(_ body: (UnsafeMutablePointer<kvm_cpuid2>) -> R) -> R {
        storage.withUnsafeMutableBytes { body($0.baseAddress!.assumingMemoryBound(to: kvm_cpuid2.self)) }
    }

    var entries: [kvm_cpuid_entry2] {
        storage.withUnsafeBytes { bytes in
            let count = Int(bytes.load(as: kvm_cpuid2.self).nent)
            let first = bytes.baseAddress! + MemoryLayout<kvm_cpuid2>.size
            return Array(UnsafeBufferPointer(start: first.assumingMemoryBound(to: kvm_cpuid_entry2.self), count: count))
        }
    }
}
