import Conformation
import GuestImage

/// Everything a build needs to know, resolved: the conformation, every library of the
/// image with its compartment, and the image set's export table.
public struct BuildPlan: Sendable {
    /// An export and its place in the image set's export table.
    public struct Export: Sendable {
        public let index: Int
        public let library: LibraryDescriptor
        public let signature: ExportSignature
        public var symbol: String { library.symbol(of: signature) }
    }

    public let name: String
    public let conformation: Conformation
    public let application: LibraryDescriptor
    /// The application first, then every library it reaches through `uses`, then the
    /// rest of the libraries the conformation places.
    public let libraries: [LibraryDescriptor]
    public let exports: [Export]

    public var mechanism: Mechanism { conformation.mechanism }

    /// Resolves `application` and the libraries it uses in `tree`, and checks `conformation` against them.
    public init(conformation: Conformation, application: String, tree: SourceTree, file: String) throws(ToolchainError)
    {
        name = conformation.name
        self.conformation = conformation
        let app = try tree.library(application)
        self.application = app
        var libraries = [app]
        var pending = app.uses + conformation.placements.map(\.library).filter { $0 != app.name }
        while let next = pending.first {
            pending.removeFirst()
            guard !libraries.contains(where: { $0.name == next }) else { continue }
            let library: LibraryDescriptor
            do { library = try tree.library(next) } catch {
                if conformation.placements.contains(where: { $0.library == next }) {
                    throw ToolchainError.conformation(ConformationError(file: file, line: nil, error.description))
                }
                throw error
            }
            libraries.append(library)
            pending += library.uses
        }
        self.libraries = libraries
        for kind in DeviceKind.all {
            let holders = libraries.filter { $0.devices.contains(kind.name) }.map(\.name)
            guard holders.count <= 1 else {
                throw ToolchainError.conformation(
                    ConformationError(
                        file: file, line: nil,
                        "libraries \(holders.joined(separator: " and ")) each declare the \(kind.description) (`devices: [\(kind.name)]`); an image set has one"
                    ))
            }
        }
        do { try conformation.check(libraries: libraries.map(\.name), file: file) } catch {
            throw ToolchainError.conformation(error)
        }
        var exports: [Export] = []
        for library in libraries {
            for signature in library.exports {
                exports.append(Export(index: exports.count, library: library, signature: signature))
            }
        }
        self.exports = exports
    }

    public func compartment(of library: LibraryDescriptor) -> Conformation.Compartment {
        conformation.compartment(of: library.name)
    }

    /// The position of `library`'s compartment in the conformation.
    public func compartmentIndex(of library: LibraryDescriptor) -> Int {
        conformation.compartments.firstIndex { $0.name == compartment(of: library).name } ?? 0
    }

    /// The VM that runs `library`: its compartment's under vmept, the only one otherwise.
    public func machine(of library: LibraryDescriptor) -> Int {
        mechanism.isolation.machine(ofCompartment: compartmentIndex(of: library))
    }

    /// The compiler flags that apply `library`'s compartment's hardening.
    public func hardeningFlags(for library: LibraryDescriptor) -> [String] {
        let hardening = compartment(of: library).hardening
        return [
            hardening.contains(.boundsChecks) ? "-O" : "-Ounchecked",
            "-Xfrontend", hardening.contains(.stackProtector) ? "-enable-stack-protector" : "-disable-stack-protector",
            hardening.contains(.exclusivityChecks) ? ExclusivityBuild.checked : "-enforce-exclusivity=unchecked"
        ]
    }
}
