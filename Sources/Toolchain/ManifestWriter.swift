import GuestImage

/// Reads the linked image back and records, from its sections, which address ranges
/// belong to the runtime, to each library and to shared data.
struct ManifestWriter {
    let plan: BuildPlan

    func manifest(image path: String) throws(ToolchainError) -> ImageManifest {
        let image: ELFImage
        do { image = try ELFImage(path: path) } catch { throw ToolchainError.image(error) }
        var runtime: [(String, UInt64, UInt64)] = []
        var shared: [(String, UInt64, UInt64)] = []
        var libraries: [String: [(String, UInt64, UInt64)]] = [:]
        for section in image.allocatedSections {
            if section.name == ".data_shared" {
                shared.append(section)
            } else if section.name == ".flexos_abi" || section.name.hasSuffix(".runtime") {
                runtime.append(section)
            } else if let owner = plan.libraries.first(where: { section.name.hasSuffix("." + $0.name) }) {
                libraries[owner.name, default: []].append(section)
            } else {
                throw ToolchainError.unplacedSection(name: section.name, address: section.address)
            }
        }
        return ImageManifest(
            name: plan.name, image: plan.name + ".elf", mechanism: plan.mechanism, application: plan.application.name,
            compartments: plan.conformation.compartments.map { compartment in
                .init(
                    name: compartment.name,
                    libraries: plan.libraries.filter { plan.compartment(of: $0).name == compartment.name }.map(\.name),
                    hardening: compartment.hardening)
            },
            libraries: plan.libraries.map { library in
                .init(
                    name: library.name, compartment: plan.compartment(of: library).name,
                    regions: regions(libraries[library.name] ?? [], image: image))
            },
            runtime: regions(runtime, image: image), shared: regions(shared, image: image),
            exports: plan.exports.map {
                .init(
                    library: $0.library.name, name: $0.signature.name, symbol: $0.symbol,
                    parameters: $0.signature.parameters.map(\.label))
            },
            devices: devices)
    }

    /// The devices the image set's libraries declare; nil when none does (older manifests).
    private var devices: [ImageManifest.Device]? {
        let devices = plan.libraries.flatMap { library in
            library.devices.map { ImageManifest.Device(kind: $0, library: library.name) }
        }
        return devices.isEmpty ? nil : devices
    }

    /// One region per segment an owner's sections fall in, starting on a page boundary:
    /// e.g. `.rodata.runtime` and `.flexos_abi` share one read-only region.
    private func regions(_ sections: [(name: String, address: UInt64, size: UInt64)], image: ELFImage) -> [ImageManifest
        .Region]
    {
        var regions: [ImageManifest.Region] = []
        var currentSegment: Int? = nil
        for section in sections {
            let segment = image.segment(containing: section.address)?.index
            if let last = regions.last, segment == currentSegment {
                regions[regions.count - 1] = .init(
                    name: last.name + "," + section.name, start: last.start,
                    size: section.address + section.size - last.start)
            } else {
                let start = alignDown(section.address, GuestLayout.pageSize)
                regions.append(.init(name: section.name, start: start, size: section.address + section.size - start))
            }
            currentSegment = segment
        }
        return regions
    }
}
