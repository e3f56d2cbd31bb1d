import Conformation
import GuestImage
import Testing

@Suite(.tags(.unit)) struct ConformationTests {
    func parse(_ yaml: String) throws -> Conformation {
        try Conformation.parse(yaml: yaml, name: "test")
    }

    func error(_ yaml: String) -> String {
        do {
            _ = try parse(yaml)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func readsTheSeedShape() throws {
        let conformation = try parse(
            """
            compartments:
            - comp1:
              mechanism: vmept
              default: True
            - comp2:
              mechanism: vmept
              hardening: [stack-protector, bounds-checks]
            libraries:
            - flexosexample: comp2
            """)
        #expect(conformation.compartments.map(\.name) == ["comp1", "comp2"])
        #expect(conformation.mechanism == .vmept)
        #expect(conformation.defaultCompartment.name == "comp1")
        #expect(conformation.compartments[1].hardening == [.stackProtector, .boundsChecks])
        #expect(conformation.compartment(of: "flexosexample").name == "comp2")
        #expect(conformation.compartment(of: "anything-else").name == "comp1")
        #expect(conformation.application == nil)
    }

    @Test func readsTheNestedShapeAndAnApplication() throws {
        let conformation = try parse(
            """
            app: example
            compartments:
            - comp1: {mechanism: fcalls, default: true}
            - comp2:
                mechanism: fcalls
                hardening: [bounds-checks]
            libraries:
            - flexosexample: comp2
            """)
        #expect(conformation.application == "example")
        #expect(conformation.compartments.map(\.mechanism) == [.fcalls, .fcalls])
        #expect(conformation.compartments[1].hardening == [.boundsChecks])
    }

    @Test func intelPKUMeansIntelMPK() throws {
        let conformation = try parse("compartments:\n- comp1:\n  mechanism: intel-pku\n  default: True\n")
        #expect(conformation.mechanism == .intelMPK)
    }

    @Test(arguments: [
        (
            "compartments:\n- comp1:\n  mechanism: vmpt\n  default: True\n",
            "config.yaml:3: unknown mechanism `vmpt` for compartment comp1"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n- comp2:\n  mechanism: fcalls\n",
            "compartments use different mechanisms (comp1: vmept, comp2: fcalls)"
        ),
        ("compartments:\n- comp1:\n  mechanism: vmept\n", "no compartment is marked `default: True`"),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n- comp2:\n  mechanism: vmept\n  default: True\n",
            "comp1 and comp2 are both marked default"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n- comp1:\n  mechanism: vmept\n",
            "compartment comp1 is defined twice"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n  hardening: [cfi, asan]\n",
            "hardening `cfi` is refused: libraries here are Swift"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n  hardening: [ubsan]\n",
            "hardening `ubsan` is refused: use bounds-checks"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\n  hardening: [shiny]\n",
            "unknown hardening option `shiny`; supported: stack-protector, bounds-checks, exclusivity-checks, guard-pages, heap-checks, asan"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\nlibraries:\n- lwip: comp9\n",
            "library lwip is placed in compartment comp9, which is not defined"
        ),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\nlibraries:\n- lwip: comp1\n- lwip: comp1\n",
            "library lwip is placed twice"
        ),
        ("compartments:\n- comp1:\n  default: True\n", "compartment comp1 has no `mechanism:`"),
        ("compartments: []\n", "`compartments:` must be a non-empty list"),
        ("libraries:\n- lwip: comp1\n", "has no `compartments:` list"),
        (
            "compartments:\n- comp1:\n  mechanism: vmept\n  default: True\nisolation: strong\n",
            "unknown key `isolation`"
        ),
        ("compartments:\n- comp1:\n  mechanism: [vmept\n", "is not valid YAML")
    ])
    func refusesWithAClearMessage(yaml: String, message: String) {
        let text = error(yaml)
        #expect(text.contains(message), "got: \(text)")
    }

    @Test func checksPlacementsAgainstTheImage() throws {
        let conformation = try parse(
            """
            compartments:
            - comp1: {mechanism: vmept, default: True}
            - comp2: {mechanism: vmept}
            - comp3: {mechanism: vmept}
            libraries:
            - flexosexample: comp2
            """)
        #expect(throws: ConformationError.self) {
            try conformation.check(libraries: ["example", "flexosexample"], file: "c.yaml")
        }
        do {
            try conformation.check(libraries: ["example", "flexosexample"], file: "c.yaml")
        } catch {
            #expect("\(error)" == "c.yaml: compartment comp3 holds no library: place a library in it or remove it")
        }
        let unknown = try parse(
            "compartments:\n- comp1: {mechanism: fcalls, default: True}\nlibraries:\n- lwip: comp1\n")
        #expect { try unknown.check(libraries: ["example"], file: "c.yaml") } throws: { error in
            "\(error)".contains("unknown library lwip")
        }
    }

    @Test func everyShippedConfigurationParses() throws {
        for name in [
            "example-fcalls", "example-vmept2", "example-vmept3", "example-unshared-vmept2", "example-skipgate-vmept2"
        ] {
            let conformation = try Conformation.load(path: repositoryRoot + "/Configs/\(name).yaml")
            #expect(conformation.name == name)
            #expect(conformation.application != nil)
        }
    }
}
