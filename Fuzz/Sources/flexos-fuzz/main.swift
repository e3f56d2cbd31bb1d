import CFuzzDriver
import FuzzTargets
import Glibc

// flexos-fuzz: one FlexOS fuzz target under libFuzzer:
//
//     FLEXOS_FUZZ_TARGET=elf FLEXOS_FUZZ_IMAGE=hello.elf flexos-fuzz CORPUS [libFuzzer options]
//
// FLEXOS_FUZZ_TARGET picks one of FuzzTarget's cases; the targets that need a real
// guest beside their input (manifest, fault) read it from FLEXOS_FUZZ_IMAGE.

/// The target and image, read once from the environment.
let chosen: (target: FuzzTarget, image: String) = {
    func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
    guard let name = environment("FLEXOS_FUZZ_TARGET"), let target = FuzzTarget(rawValue: name) else {
        fputs(
            "flexos-fuzz: set FLEXOS_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n",
            stderr)
        exit(2)
    }
    return (target, environment("FLEXOS_FUZZ_IMAGE") ?? "")
}()

/// One input through the chosen target (libFuzzer's callback; also its LLVMFuzzerTestOneInput).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    chosen.target.run(UnsafeRawBufferPointer(start: data, count: size), image: chosen.image)
    return 0
}

_ = chosen
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) })
