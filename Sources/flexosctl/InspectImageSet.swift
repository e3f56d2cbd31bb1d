import Foundation
import GuestImage
import GuestMachine

/// `flexosctl inspect compartments FOLDER`: an image set's layout as the monitor would
/// lay it out, without running it: each VM's compartments, libraries and hardening, and
/// under intel-mpk each compartment's protection key and the PKRU it runs with.
struct ImageSetLayoutView: Encodable {
    struct Compartment: Encodable {
        let name: String
        let libraries: [String]
        let hardening: [String]
        /// Under intel-mpk: its protection key and the PKRU its code runs with.
        let protectionKey: UInt8?
        let pkru: String?
        let stack: String
        let heap: String
    }

    struct Machine: Encodable {
        let name: String
        let compartments: [Compartment]
    }

    let imageSet: String
    let mechanism: String
    let machines: [Machine]

    static func isImageSet(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + ImageManifest.fileName)
    }

    init(path: String) throws(LaunchError) {
        let set = try ImageSet.open(path)
        let layout = try ImageSetLayout(
            image: set.image, manifest: set.manifest, memory: ImageSetLayout.defaultMemory,
            sharedMemory: ImageSetLayout.defaultSharedMemory)
        let manifest = set.manifest
        imageSet = manifest.name
        mechanism = manifest.mechanism.rawValue
        machines = layout.compartments.map { machine in
            Machine(
                name: machine.name,
                compartments: manifest.compartments.filter { machine.members.contains($0.name) }.map { compartment in
                    let keyed = machine.keyed.first { $0.name == compartment.name }
                    return Compartment(
                        name: compartment.name,
                        libraries: manifest.libraries.filter { $0.compartment == compartment.name }.map(\.name),
                        hardening: compartment.hardening.map(\.rawValue), protectionKey: keyed?.key,
                        pkru: keyed.map { hex($0.pkru) },
                        stack: ImageSetLayoutView.range(keyed?.stack ?? machine.stack),
                        heap: ImageSetLayoutView.range(keyed?.heap ?? machine.heap))
                })
        }
    }

    var text: String {
        var lines = ["image set \(imageSet) (not running): \(mechanism), \(machines.count) VM(s)"]
        for machine in machines {
            lines.append("")
            lines.append("VM \(machine.name)")
            for compartment in machine.compartments {
                let key =
                    compartment.protectionKey.map {
                        "  key \($0), PKRU \(compartment.pkru ?? "?") (only keys 0 and \($0) open)"
                    } ?? ""
                lines.append("  \(compartment.name)\(key)")
                lines.append("    libraries: \(compartment.libraries.joined(separator: ", "))")
                lines.append(
                    "    hardening: \(compartment.hardening.isEmpty ? "none" : compartment.hardening.joined(separator: ", "))"
                )
                lines.append("    stack \(compartment.stack), heap \(compartment.heap)")
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func range(_ range: Range<UInt64>) -> String { "\(hex(range.lowerBound))-\(hex(range.upperBound))" }
}
