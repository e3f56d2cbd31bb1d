/// Why a guest image was refused. Each message names the file and what is wrong with it.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case notELF(path: String)
    case truncated(path: String, detail: String)
    case notELF64(path: String)
    case notLittleEndian(path: String)
    case wrongMachine(path: String, machine: UInt16)
    case notExecutable(path: String, type: UInt16)
    case noLoadableSegments(path: String)
    case inconsistentSegment(path: String, index: Int, detail: String)
    case overlappingSegments(path: String, first: Int, second: Int)
    case segmentOutsideGuestMemory(path: String, index: Int, start: UInt64, end: UInt64)
    case entryNotExecutable(path: String, entry: UInt64)
    case notFlexOSGuest(path: String)
    case abiVersionMismatch(path: String, found: UInt32, expected: UInt32)
    case badManifest(path: String, detail: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .notELF(let path):
            return "\(path) is not an ELF file"
        case .truncated(let path, let detail):
            return "\(path) is truncated or corrupt: \(detail)"
        case .notELF64(let path):
            return "\(path) is a 32-bit ELF; FlexOS guests are 64-bit"
        case .notLittleEndian(let path):
            return "\(path) is a big-endian ELF; FlexOS guests are little-endian x86-64"
        case .wrongMachine(let path, let machine):
            return "\(path) is built for \(machineName(machine)), not x86-64"
        case .notExecutable(let path, let type):
            return "\(path) is an ELF \(elfTypeName(type)), not a static executable (ET_EXEC)"
        case .noLoadableSegments(let path):
            return "\(path) has no loadable (PT_LOAD) segment"
        case .inconsistentSegment(let path, let index, let detail):
            return "\(path): segment \(index) \(detail)"
        case .overlappingSegments(let path, let first, let second):
            return "\(path): segments \(first) and \(second) overlap in guest memory"
        case .segmentOutsideGuestMemory(let path, let index, let start, let end):
            return "\(path): segment \(index) [\(hex(start)), \(hex(end))) lies outside guest memory "
                + "(images load in [\(hex(GuestLayout.image.lowerBound)), \(hex(GuestLayout.image.upperBound))) "
                + "and shared data in [\(hex(GuestLayout.shared.lowerBound)), \(hex(GuestLayout.shared.upperBound))))"
        case .entryNotExecutable(let path, let entry):
            return "\(path): the entry point \(hex(entry)) is not in an executable segment"
        case .notFlexOSGuest(let path):
            return "\(path) is not a FlexOS guest: it has no .flexos_abi section (build it with `flexosctl build`)"
        case .abiVersionMismatch(let path, let found, let expected):
            return
                "\(path) was built against FlexOS ABI version \(found); this monitor speaks version \(expected): rebuild it"
        case .badManifest(let path, let detail):
            return "the image manifest \(path) is invalid: \(detail)"
        }
    }
}

/// `0x` followed by the hexadecimal digits of `value`.
public func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

private func machineName(_ machine: UInt16) -> String {
    switch machine {
    case 3: return "i386"
    case 40: return "ARM"
    case 183: return "AArch64"
    case 243: return "RISC-V"
    default: return "machine \(machine)"
    }
}

private func elfTypeName(_ type: UInt16) -> String {
    switch type {
    case 1: return "relocatable object (ET_REL)"
    case 3: return "shared object or PIE (ET_DYN)"
    case 4: return "core file (ET_CORE)"
    default: return "file of type \(type)"
    }
}
