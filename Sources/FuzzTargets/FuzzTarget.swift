import Glibc

/// The parsers and analyzers that take hostile input, each as a function of raw bytes:
/// what libFuzzer drives (Fuzz/, `scripts/fuzz`) and what `swift test` replays from the
/// committed corpora. A target returns normally for any input; a trap is a bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A guest ELF: the loader's checks, then the symbolizer.
    case elf
    /// An image manifest: decoding, its checks, and the layout over a real image.
    case manifest
    /// A conformation's YAML.
    case conformation
    /// A control-API launch request body and the values in it.
    case request
    /// A hypercall's number and argument block against a guest address space.
    case hypercall
    /// The fault analyzer, given random registers and stack words.
    case fault

    /// Runs the target on `bytes`. `image` is a FlexOS guest (hello) for the targets that
    /// need one beside the input (manifest, fault).
    public func run(_ bytes: UnsafeRawBufferPointer, image: String) {
        switch self {
        case .elf: ELFFuzzing.run(bytes)
        case .manifest: ManifestFuzzing.run(bytes, image: image)
        case .conformation: ConformationFuzzing.run(bytes)
        case .request: RequestFuzzing.run(bytes)
        case .hypercall: HypercallFuzzing.run(bytes)
        case .fault: FaultFuzzing.run(bytes, image: image)
        }
    }
}

/// A scratch file of this process, rewritten for each input (the loaders take paths).
enum ScratchFile {
    static let folder: String = {
        let path = "/tmp/flexos-fuzz-\(getpid())"
        mkdir(path, 0o700)
        return path
    }()

    /// Writes `bytes` to `name` in the scratch folder and returns its path.
    static func write(_ bytes: UnsafeRawBufferPointer, named name: String) -> String {
        let path = folder + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return path }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { break }
            offset += written
        }
        return path
    }
}

/// Reads little-endian words off the front of a fuzz input.
struct InputReader {
    private var bytes: UnsafeRawBufferPointer

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The next 8 bytes as a UInt64 (missing bytes read as 0).
    mutating func word() -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<min(8, bytes.count) { value |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        bytes = UnsafeRawBufferPointer(rebasing: bytes[min(8, bytes.count)...])
        return value
    }

    /// What is left.
    var rest: UnsafeRawBufferPointer { bytes }
}
