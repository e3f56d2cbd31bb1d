import GuestImage

/// What a config file may name beside the options themselves (`Hardening` is the image's
/// vocabulary, in GuestImage, since the manifest carries it).
extension Hardening {
    /// Names of the FlexOS seed (its C world) that stand for options of this toolchain.
    static let aliases: [String: [Hardening]] = ["asan": [.heapChecks, .guardPages]]

    /// Names of the seed this toolchain refuses, with what to use instead.
    static let refused: [String: String] = [
        "cfi":
            "libraries here are Swift, which has no control-flow integrity instrumentation, and have no C sources for clang's -fsanitize=kcfi; a cross-compartment call can only enter through the export table (and, under intel-mpk, through gates that check PKRU)",
        "safestack": "Swift has no safe stack; use stack-protector",
        "ubsan":
            "use bounds-checks: Swift's checked build traps on overflow, out-of-bounds access and failed preconditions",
        "kasan": "use asan (heap-checks and guard-pages): the guest kernel is the library OS itself"
    ]

    /// The options `name` stands for in a config file: itself, or what an alias expands to.
    public static func options(named name: String) throws(HardeningNameError) -> [Hardening] {
        if let option = Hardening(rawValue: name) { return [option] }
        if let options = aliases[name] { return options }
        let supported =
            "supported: " + (Hardening.allCases.map(\.rawValue) + aliases.keys.sorted()).joined(separator: ", ")
        if let reason = refused[name] {
            throw HardeningNameError(message: "hardening `\(name)` is refused: \(reason) (\(supported))")
        }
        throw HardeningNameError(message: "unknown hardening option `\(name)`; \(supported)")
    }
}

/// A hardening name a config file may not use, and why.
public struct HardeningNameError: Error, Equatable {
    public let message: String
}

/// A conformation: which libraries share a compartment, what keeps compartments apart
/// and how each compartment's libraries are hardened. Parsed from a config.yaml in the
/// shape of the FlexOS talk's:
///
///     compartments:
///     - comp1:
///       mechanism: vmept
///       default: True
///     - comp2:
///       mechanism: vmept
///       hardening: [stack-protector, bounds-checks]
///     libraries:
///     - flexosexample: comp2
///
/// Libraries not named under `libraries` go to the default compartment. An optional
/// top-level `app:` names the application (flexosctl's `--app` does the same).
public struct Conformation: Equatable, Sendable {
    public struct Compartment: Equatable, Sendable {
        public var name: String
        public var mechanism: Mechanism
        public var isDefault: Bool
        public var hardening: [Hardening]

        public init(name: String, mechanism: Mechanism, isDefault: Bool, hardening: [Hardening]) {
            self.name = name
            self.mechanism = mechanism
            self.isDefault = isDefault
            self.hardening = hardening
        }
    }

    /// The name of the image set it builds (the file name without .yaml).
    public var name: String
    public var application: String?
    public var compartments: [Compartment]
    /// Libraries placed explicitly, in file order.
    public var placements: [(library: String, compartment: String)]

    public init(
        name: String, application: String?, compartments: [Compartment],
        placements: [(library: String, compartment: String)]
    ) {
        self.name = name
        self.application = application
        self.compartments = compartments
        self.placements = placements
    }

    /// The one mechanism of every compartment (validation ensures there is one).
    public var mechanism: Mechanism { compartments[0].mechanism }

    /// The compartment that holds whatever is not placed explicitly.
    public var defaultCompartment: Compartment { compartments.first { $0.isDefault } ?? compartments[0] }

    /// The compartment `library` lives in.
    public func compartment(of library: String) -> Compartment {
        let name = placements.first { $0.library == library }?.compartment ?? defaultCompartment.name
        return compartments.first { $0.name == name } ?? defaultCompartment
    }

    /// A conformation with one default compartment holding everything, under `mechanism`.
    public static func single(name: String, application: String, mechanism: Mechanism = .fcalls) -> Conformation {
        Conformation(
            name: name, application: application,
            compartments: [Compartment(name: "comp1", mechanism: mechanism, isDefault: true, hardening: [])],
            placements: [])
    }

    /// Checks the placement of an image's libraries: every placed library exists and
    /// every compartment holds at least one library.
    public func check(libraries: [String], file: String) throws(ConformationError) {
        for placement in placements where !libraries.contains(placement.library) {
            throw ConformationError(
                file: file, line: nil,
                "unknown library \(placement.library): this image has \(libraries.sorted().joined(separator: ", ")) (a library is a folder under Guest/Libraries or Guest/Apps, reached from the application through `uses`)"
            )
        }
        for compartment in compartments
        where !libraries.contains(where: { self.compartment(of: $0).name == compartment.name }) {
            throw ConformationError(
                file: file, line: nil,
                "compartment \(compartment.name) holds no library: place a library in it or remove it")
        }
    }

    public static func == (lhs: Conformation, rhs: Conformation) -> Bool {
        lhs.name == rhs.name && lhs.application == rhs.application && lhs.compartments == rhs.compartments
            && lhs.placements.map(\.library) == rhs.placements.map(\.library)
            && lhs.placements.map(\.compartment) == rhs.placements.map(\.compartment)
    }
}
