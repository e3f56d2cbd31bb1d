import FoundationEssentials
import Glibc

/// The description of an image set that `flexosctl build` writes beside the image:
/// which address ranges belong to which library and compartment, where shared data
/// lives, and each compartment's export table. The monitor maps into each compartment's
/// VM only what this file says the compartment may see.
public struct ImageManifest: Codable, Equatable, Sendable {
    public static let fileName = "manifest.json"
    public static let currentFormat = 2

    /// A named address range of the image.
    public struct Region: Codable, Equatable, Sendable {
        public var name: String
        public var start: UInt64
        public var size: UInt64
        public var range: Range<UInt64> { start..<(start + size) }

        public init(name: String, start: UInt64, size: UInt64) {
            self.name = name
            self.start = start
            self.size = size
        }
    }

    public struct Compartment: Codable, Equatable, Sendable {
        public var name: String
        public var libraries: [String]
        /// Its hardening options (an option this build does not know is refused on reading).
        public var hardening: [Hardening]

        public init(name: String, libraries: [String], hardening: [Hardening]) {
            self.name = name
            self.libraries = libraries
            self.hardening = hardening
        }
    }

    public struct Library: Codable, Equatable, Sendable {
        public var name: String
        public var compartment: String
        public var regions: [Region]

        public init(name: String, compartment: String, regions: [Region]) {
            self.name = name
            self.compartment = compartment
            self.regions = regions
        }
    }

    /// A function a library lets other compartments call; its position in `exports` is its index.
    public struct Export: Codable, Equatable, Sendable {
        public var library: String
        public var name: String
        public var symbol: String
        /// The labels of its parameters, in order.
        public var parameters: [String]

        public init(library: String, name: String, symbol: String, parameters: [String]) {
            self.library = library
            self.name = name
            self.symbol = symbol
            self.parameters = parameters
        }
    }

    /// A device the monitor provides, mapped only in the compartment of the library that
    /// declares it (`devices: [net]` in its library.yaml).
    public struct Device: Codable, Equatable, Sendable {
        /// Its `DeviceKind`'s name.
        public var kind: String
        public var library: String

        public init(kind: String, library: String) {
            self.kind = kind
            self.library = library
        }
    }

    public var format: Int
    public var name: String
    /// The ELF file, relative to the manifest's folder.
    public var image: String
    public var mechanism: Mechanism
    public var application: String
    public var compartments: [Compartment]
    public var libraries: [Library]
    /// The runtime and generated gates: mapped in every compartment.
    public var runtime: [Region]
    /// Shared data (`.data_shared`): mapped at the same address in every compartment.
    public var shared: [Region]
    public var exports: [Export]
    /// Devices, if the image set has any (absent in manifests of image sets without).
    public var devices: [Device]?

    public init(
        name: String, image: String, mechanism: Mechanism, application: String, compartments: [Compartment],
        libraries: [Library], runtime: [Region], shared: [Region], exports: [Export], devices: [Device]? = nil
    ) {
        self.format = ImageManifest.currentFormat
        self.name = name
        self.image = image
        self.mechanism = mechanism
        self.application = application
        self.compartments = compartments
        self.libraries = libraries
        self.runtime = runtime
        self.shared = shared
        self.exports = exports
        self.devices = devices
    }

    /// The library that declares a device of `kind`, if the image set has one.
    public func library(holding kind: DeviceKind) -> Library? {
        guard let device = devices?.first(where: { $0.kind == kind.name }) else { return nil }
        return libraries.first { $0.name == device.library }
    }

    /// The devices its libraries declare, with their kinds, in the manifest's order.
    public var deviceKinds: [(kind: DeviceKind, library: Library)] {
        (devices ?? []).compactMap { device in
            guard let kind = DeviceKind.named(device.kind),
                let library = libraries.first(where: { $0.name == device.library })
            else { return nil }
            return (kind, library)
        }
    }

    /// The index of the compartment that runs the application's `main`.
    public var applicationCompartment: Int {
        let owner = libraries.first { $0.name == application }?.compartment
        return compartments.firstIndex { $0.name == owner } ?? 0
    }

    /// Reads a manifest and checks that it is internally consistent.
    /// Where in the manifest a decoding error is and what it says, e.g. "at
    /// compartments[0].hardening[1]: Cannot initialize Hardening from invalid String value x".
    static func describe(_ error: any Error) -> String {
        let context: DecodingError.Context
        switch error as? DecodingError {
        case .dataCorrupted(let found), .keyNotFound(_, let found), .typeMismatch(_, let found),
            .valueNotFound(_, let found):
            context = found
        default: return "\(error)"
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return "at \(path.isEmpty ? "the top" : String(path.drop { $0 == "." })): \(context.debugDescription)"
    }

    public static func load(path: String) throws(ImageError) -> ImageManifest {
        let data = Data(try readWholeFile(path))
        struct Format: Decodable { let format: Int }
        guard let format = try? JSONDecoder().decode(Format.self, from: data) else {
            throw ImageError.badManifest(
                path: path, detail: "not a FlexOS image manifest (it is not JSON with a `format` field)")
        }
        guard format.format == ImageManifest.currentFormat else {
            throw ImageError.badManifest(
                path: path,
                detail:
                    "it has format \(format.format); this monitor reads format \(ImageManifest.currentFormat): rebuild the image set with `flexosctl build`"
            )
        }
        let manifest: ImageManifest
        do { manifest = try JSONDecoder().decode(ImageManifest.self, from: data) } catch {
            throw ImageError.badManifest(
                path: path, detail: "not a FlexOS image manifest (\(ImageManifest.describe(error)))")
        }
        try manifest.check(path: path)
        return manifest
    }

    /// Writes the manifest as readable JSON.
    public func write(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }

    private func check(path: String) throws(ImageError) {
        func fail(_ detail: String) -> ImageError { .badManifest(path: path, detail: detail) }
        guard !compartments.isEmpty else { throw fail("it lists no compartments") }
        guard compartments.count <= GuestLayout.maxCompartments else {
            throw fail("\(compartments.count) compartments; at most \(GuestLayout.maxCompartments) are supported")
        }
        for compartment in compartments where !ImageManifest.isValidName(compartment.name) {
            throw fail("compartment \(quoted(compartment.name)) cannot name a compartment")
        }
        let names = Set(compartments.map(\.name))
        for library in libraries where !names.contains(library.compartment) {
            throw fail(
                "library \(library.name) is placed in compartment \(library.compartment), which it does not list")
        }
        guard libraries.contains(where: { $0.name == application }) else {
            throw fail("the application \(application) is not among its libraries")
        }
        guard ImageManifest.isValidName(name) else {
            throw fail(
                "its name \(quoted(name)) cannot name an image set: use up to 64 letters, digits, '-', '_' and '.', not starting with '.'"
            )
        }
        guard ImageManifest.isPlainFileName(image) else {
            throw fail("its image \(quoted(image)) must be a file name in the manifest's own folder, with no '/'")
        }
        let regions = runtime + shared + libraries.flatMap(\.regions)
        for region in regions {
            guard GuestLayout.holdsImageRange(start: region.start, size: region.size) else {
                throw fail(
                    "region \(quoted(region.name)) at \(hex(region.start)) of \(region.size) bytes lies outside the image and shared areas"
                )
            }
        }
        for export in exports where !libraries.contains(where: { $0.name == export.library }) {
            throw fail("export \(export.name) belongs to unknown library \(export.library)")
        }
        for device in devices ?? [] {
            guard DeviceKind.named(device.kind) != nil else {
                throw fail("device \(quoted(device.kind)) is not one the monitor provides (\(DeviceKind.names))")
            }
            guard libraries.contains(where: { $0.name == device.library }) else {
                throw fail("device \(device.kind) belongs to unknown library \(quoted(device.library))")
            }
        }
        for kind in DeviceKind.all where (devices ?? []).filter({ $0.kind == kind.name }).count > 1 {
            throw fail("it declares more than one \(kind.description)")
        }
    }
}

extension ImageManifest {
    /// Whether `name` can name an image set: it appears in API paths and file names.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.first != "."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Whether `name` is a file in the manifest's own folder (no path, no `..`).
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }
}

/// Whether `text` can name a Swift module, function or parameter: a library's name is
/// one (conformations place libraries by it; generated gates use it as a namespace).
public func isIdentifier(_ text: String) -> Bool {
    guard let first = text.first, first == "_" || first.isLetter else { return false }
    return text.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber } && text.allSatisfy(\.isASCII)
}

/// `text` in backquotes, with control characters escaped, for error messages.
func quoted(_ text: String) -> String {
    "`"
        + String(
            text.prefix(80).unicodeScalars.map {
                $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0)
            }.joined()) + "`"
}

/// The bytes of the regular file at `path`, refused when larger than `limit`.
///
/// Opened without blocking and checked to be a regular file before anything is read, so
/// a FIFO, a device or a socket given as an image or manifest is refused at once instead
/// of hanging the caller.
public func readWholeFile(_ path: String, limit: Int = 16 << 20) throws(ImageError) -> [UInt8] {
    let fd = try openRegularFile(path)
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count < 0 { throw ImageError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if count == 0 { return bytes }
        guard bytes.count + count <= limit else {
            throw ImageError.cannotOpen(path: path, reason: "it is larger than \(limit) bytes")
        }
        bytes += chunk[0..<count]
    }
}

/// A read-only descriptor of the regular file at `path` (O_NONBLOCK, so opening a FIFO
/// never waits for a writer; regular files ignore the flag).
public func openRegularFile(_ path: String) throws(ImageError) -> Int32 {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    if fd < 0 { throw ImageError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
    var status = stat()
    guard fstat(fd, &status) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw ImageError.cannotOpen(path: path, reason: reason)
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
        close(fd)
        throw ImageError.cannotOpen(path: path, reason: "not a regular file")
    }
    return fd
}
