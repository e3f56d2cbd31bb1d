import Foundation
import FuzzTargets
import Testing

/// Replays every committed fuzz input (the seeds, the corpora libFuzzer grew, and every
/// crash it found once fixed) through its target: what once crashed the monitor stays a
/// test. Fuzz/README.md says how the corpora are grown.
@Suite(.tags(.boot), .beyondTheUnitTier) struct FuzzCorpusTests {
    static let fuzzFolder = repositoryRoot + "/Fuzz"

    /// The input files of `target` under Seeds/, Corpus/ and Crashes/.
    static func inputs(of target: FuzzTarget) -> [String] {
        ["Seeds", "Corpus", "Crashes"].flatMap { kind -> [String] in
            let folder = "\(fuzzFolder)/\(kind)/\(target.rawValue)"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return names.filter { !$0.hasSuffix(".md") }.sorted().map { folder + "/" + $0 }
        }
    }

    @Test(arguments: FuzzTarget.allCases) func everyCommittedInputRunsCleanly(target: FuzzTarget) throws {
        let image = try TestImages.build("Guest/Apps/hello").image
        let inputs = Self.inputs(of: target)
        #expect(!inputs.isEmpty, "no seeds for \(target.rawValue) in Fuzz/Seeds")
        for path in inputs {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes.withUnsafeBytes { target.run($0, image: image) }
        }
    }
}
