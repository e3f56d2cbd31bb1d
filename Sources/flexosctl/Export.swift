import ArgumentParser
import Foundation
import GuestMachine
import Hosts
import QEMUEngine

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a libvirt domain that boots a single-VM image set (fcalls, intel-mpk) under QEMU's emulation.",
        discussion: """
            Prepares the set's memory as flexosd's QEMU engine does and writes it, the ring-0 shim and domain.xml into the output folder (readable by libvirt's QEMU user). `virsh create FOLDER/domain.xml` boots it; the guest's console is FOLDER/console.log and its end (exit, panic, fault) is reported in FOLDER/control. The console and the report go out on the serial ports COM1 and COM2 (libvirt <serial> devices); the loaders that place the prepared memory and isa-debug-exit, which ends QEMU, have no libvirt element, so they are passed through (libvirt marks the domain "tainted: custom-argv").
            """)

    @Flag(help: "Write a libvirt domain (the only format so far).")
    var libvirt = false

    @Argument(help: "An image set folder (from flexosctl build).")
    var imageSet: String

    @Option(help: "The folder to write to (default: IMAGE-SET/libvirt).")
    var output: String?

    func run() throws {
        guard libvirt else { throw ValidationError("say which format: --libvirt") }
        let folder = URL(fileURLWithPath: output ?? imageSet + "/libvirt").standardized.path
        do {
            let set = try ImageSet.open(imageSet)
            let export = try QEMUEngine().export(set, options: LaunchOptions(), to: folder)
            let xml = LibvirtDomain.xml(
                name: "flexos-\(set.manifest.name)", memoryBytes: export.memoryBytes, kernel: export.shim,
                serials: [.file(export.console), .file(export.control)], passthrough: export.passthroughArguments)
            try xml.write(toFile: folder + "/domain.xml", atomically: true, encoding: .utf8)
            print(
                "wrote \(folder)/domain.xml; boot it with `virsh -c qemu:///system create \(folder)/domain.xml`; its console is \(export.console), its end is reported in \(export.control)"
            )
        } catch let error as LaunchError {
            throw CleanExit.failure("flexosctl: error: \(error)")
        } catch {
            throw CleanExit.failure(
                "flexosctl: error: cannot write \(folder)/domain.xml: \(error.localizedDescription)")
        }
    }
}
