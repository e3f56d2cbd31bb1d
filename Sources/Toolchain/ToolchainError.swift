import Conformation
import GuestImage

/// Why a build failed, with what to do about it.
public enum ToolchainError: Error, CustomStringConvertible {
    case toolMissing(String, hint: String)
    case sourceTreeNotFound(searchedFrom: String)
    case unknownLibrary(String, searched: [String])
    case badLibraryDescriptor(path: String, line: Int?, String)
    case conformation(ConformationError)
    case commandFailed(step: String, command: String, output: String)
    case exportMissing(library: String, export: String, symbol: String)
    case unplacedSection(name: String, address: UInt64)
    case image(ImageError)
    case io(path: String, String)
    case protectionKeyInstruction(
        library: String, section: String, offset: UInt64, address: UInt64, instruction: String, more: Int)
    /// A step failed while the disk that holds the build folder was (nearly) full.
    indirect case diskFull(folder: String, freeBytes: UInt64, step: ToolchainError)

    public var description: String {
        switch self {
        case .toolMissing(let tool, let hint):
            return "\(tool) was not found. \(hint)"
        case .sourceTreeNotFound(let start):
            return
                "cannot find the FlexOS source tree (a folder with Guest/Runtime and Sources/CFlexOSABI) from \(start); run flexosctl inside the repository or pass --source-root"
        case .unknownLibrary(let name, let searched):
            return
                "unknown library \(name): no folder \(name) with a library.yaml in \(searched.joined(separator: ", "))"
        case .badLibraryDescriptor(let path, let line, let message):
            return "\(path)\(line.map { ":\($0)" } ?? ""): \(message)"
        case .conformation(let error):
            return error.description
        case .commandFailed(let step, let command, let output):
            return
                "\(step) failed:\n  $ \(command)\n\(output.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))"
        case .exportMissing(let library, let export, let symbol):
            return
                "library \(library) declares export \(export) in its library.yaml but defines no function \(symbol): give the function @_cdecl(\"\(symbol)\")"
        case .unplacedSection(let name, let address):
            return
                "the linked image has section \(name) at \(hex(address)), which belongs to no library or the runtime (the generated linker script misses it)"
        case .image(let error):
            return "the linked image is not loadable: \(error)"
        case .io(let path, let message):
            return "\(path): \(message)"
        case .diskFull(let folder, let free, let step):
            return
                "the disk that holds \(folder) is full (\(free >> 10) KiB free): free some space or build elsewhere with --output; nothing half-written was left there. (What failed: \(step.description.split(separator: "\n").first ?? ""))"
        case .protectionKeyInstruction(let library, let section, let offset, let address, let instruction, let more):
            return
                "library \(library) holds the bytes of \(instruction) at offset \(hex(offset)) of its \(section) (address \(hex(address)))"
                + (more > 0 ? " and \(more) more such place(s)" : "")
                + ", outside the gates: under intel-mpk any compartment could jump there and write PKRU, opening every key. "
                + "Change the code so that no such byte sequence appears (aligned to an instruction or not), or build with another mechanism"
        }
    }
}
