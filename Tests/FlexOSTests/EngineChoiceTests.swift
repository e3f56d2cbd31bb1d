import ControlProtocol
import GuestImage
import GuestMachine
import Monitor
import Testing

/// Which engine a launch runs on when it names none, and what it says about it.
@Suite(.tags(.unit)) struct EngineChoiceTests {
    /// An engine that refuses what `refuses` says; it is never launched here.
    struct Engine: ImageSetEngine {
        let kind: EngineKind
        let refuses: @Sendable (ImageManifest) -> String?
        func refusal(of manifest: ImageManifest) -> String? { refuses(manifest) }
        func launch(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError)
            -> any RunningImageSet
        { throw LaunchError.engineMissing("not launched in a unit test") }
    }

    let keyed = EngineChoiceTests.manifest(.intelMPK)
    let noKeysHere = Engine(kind: .kvm) { $0.mechanism == .intelMPK ? "no protection keys" : nil }
    let emulated = Engine(kind: .qemu) { _ in nil }

    @Test func theFirstEngineThatCanRunTheSetIsChosenAndTheReasonSaysWhy() throws {
        let choice = try EngineChoice(among: [noKeysHere, emulated], asked: nil, for: keyed)
        #expect(choice.engine.kind == .qemu)
        #expect(choice.reason == "no engine asked for: kvm cannot (no protection keys); qemu can run it here")
        let plain = EngineChoiceTests.manifest(.fcalls)
        #expect(try EngineChoice(among: [noKeysHere, emulated], asked: nil, for: plain).engine.kind == .kvm)
    }

    @Test func anEngineAskedForIsTakenEvenWhereItWouldRefuseSoItsLaunchSaysWhy() throws {
        let choice = try EngineChoice(among: [noKeysHere, emulated], asked: .kvm, for: keyed)
        #expect(choice.engine.kind == .kvm && choice.reason == nil)
    }

    @Test func whenNoEngineCanRunTheSetEveryRefusalIsSaid() throws {
        #expect {
            try EngineChoice(among: [noKeysHere, Engine(kind: .qemu) { _ in "no QEMU" }], asked: nil, for: keyed)
        } throws: { error in
            "\(error)"
                == "no engine can run this intel-mpk image set here: kvm cannot (no protection keys); qemu cannot (no QEMU)"
        }
    }

    static func manifest(_ mechanism: Mechanism) -> ImageManifest {
        ImageManifest(
            name: "set", image: "set.elf", mechanism: mechanism, application: "app", compartments: [], libraries: [],
            runtime: [], shared: [], exports: [])
    }

    @Test func anEngineTheDaemonLacksIsAnError() {
        #expect {
            try EngineChoice(among: [noKeysHere], asked: .qemu, for: keyed)
        } throws: { "\($0)" == "this flexosd has no qemu engine" }
    }
}
