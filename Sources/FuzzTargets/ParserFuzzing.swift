import Conformation
import ControlAPI
import ControlProtocol
import FoundationEssentials
import GuestImage
import GuestMachine
import Monitor

/// The ELF loader and, for an image it accepts, the symbolizer.
enum ELFFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let image = try? ELFImage(path: ScratchFile.write(bytes, named: "guest.elf")) else { return }
        let symbols = Symbolizer(image: image)
        for address in [image.entry, image.entry &+ 1, 0, .max] {
            _ = symbols.describe(address)
            _ = symbols.sourceLocation(of: address)
        }
        _ = image.allocatedSections
    }
}

/// A manifest beside a real image: its checks, then the layout it asks for.
enum ManifestFuzzing {
    /// The image, loaded once rather than for every input.
    nonisolated(unsafe) static var images: [String: ELFImage] = [:]

    static func run(_ bytes: UnsafeRawBufferPointer, image: String) {
        guard let manifest = try? ImageManifest.load(path: ScratchFile.write(bytes, named: "manifest.json")) else {
            return
        }
        if images[image] == nil { images[image] = try? ELFImage(path: image) }
        guard let elf = images[image] else { return }
        _ = try? ImageSetLayout(image: elf, manifest: manifest, memory: 4 << 20, sharedMemory: 2 << 20)
    }
}

enum ConformationFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        _ = try? Conformation.parse(yaml: String(decoding: bytes, as: UTF8.self), name: "fuzz")
    }
}

/// A launch request body, then every value in it as the daemon checks them.
enum RequestFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = ControlAPIPaths.unescaped(Substring(text))
        _ = CommandLineValues.byteCount(text)
        _ = CommandLineValues.seconds(text)
        guard let request = try? JSONDecoder().decode(LaunchRequest.self, from: Data(bytes)) else { return }
        _ = request.name.map(ImageManifest.isValidName)
        _ = request.timeout.map(CommandLineValues.isValidDuration)
        _ = formatBytes(request.memory ?? 0)
        _ = formatBytes(request.sharedMemory ?? 0)
    }
}
