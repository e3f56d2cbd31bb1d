import Glibc
import GuestImage

/// An image set on disk: a guest ELF and the manifest that says what is what in it.
///
/// `flexosd` accepts the folder `flexosctl build` writes, its manifest.json, or a guest
/// ELF. An ELF with no manifest beside it runs as one compartment that maps all of it.
public struct ImageSet: @unchecked Sendable {
    public let image: ELFImage
    public let manifest: ImageManifest
    /// The path as given.
    public let path: String

    public static func open(_ path: String) throws(LaunchError) -> ImageSet {
        var status = stat()
        guard stat(path, &status) == 0 else { throw LaunchError.notFound(path: path) }
        do {
            if (status.st_mode & S_IFMT) == S_IFDIR {
                return try fromManifest(path + "/" + ImageManifest.fileName, given: path)
            }
            if path.hasSuffix(".json") { return try fromManifest(path, given: path) }
            let sibling = directory(of: path) + "/" + ImageManifest.fileName
            if access(sibling, R_OK) == 0 {
                let manifest = try ImageManifest.load(path: sibling)
                if manifest.image == basename(path) {
                    return ImageSet(image: try ELFImage(path: path), manifest: manifest, path: path)
                }
            }
            let image = try ELFImage(path: path)
            return ImageSet(image: image, manifest: bareManifest(image), path: path)
        } catch {
            throw LaunchError.image(error)
        }
    }

    private static func fromManifest(_ manifestPath: String, given: String) throws(ImageError) -> ImageSet {
        let manifest = try ImageManifest.load(path: manifestPath)
        let image = try ELFImage(path: directory(of: manifestPath) + "/" + manifest.image)
        return ImageSet(image: image, manifest: manifest, path: given)
    }

    /// One compartment that maps every segment: how a bare ELF runs.
    package static func bareManifest(_ image: ELFImage) -> ImageManifest {
        // The file name becomes the image set's name: keep only what a name may hold.
        let stem = basename(image.path).split(separator: ".").first.map(String.init) ?? ""
        let cleaned = String(
            stem.prefix(64).map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "-" })
        let name = cleaned.isEmpty ? "guest" : cleaned
        func regions(_ range: Range<UInt64>) -> [ImageManifest.Region] {
            image.segments.filter { range.contains($0.virtualAddress) }.map {
                .init(name: "segment \($0.index)", start: $0.virtualAddress, size: $0.memorySize)
            }
        }
        return ImageManifest(
            name: name, image: basename(image.path), mechanism: .fcalls, application: name,
            compartments: [.init(name: name, libraries: [name], hardening: [])],
            libraries: [.init(name: name, compartment: name, regions: [])],
            runtime: regions(GuestLayout.image), shared: regions(GuestLayout.shared), exports: [])
    }
}

private func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

private func basename(_ path: String) -> String {
    path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
}
