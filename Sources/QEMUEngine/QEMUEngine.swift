import CFlexOSABI
import CKVM
import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM

/// Runs a single-VM image set (fcalls, intel-mpk) under QEMU's emulation instead of KVM:
/// `qemu-system-x86_64 -accel tcg -cpu max`, which emulates protection keys, started by the
/// ring-0 shim the build puts beside the image (Guest/Ring0, `qemu-shim.elf`).
///
/// The guest's memory is prepared exactly as for KVM (CompartmentMemory: page tables, boot
/// info, console ring, image), plus supervisor-only mappings of the shim, and handed to
/// QEMU as files its generic loader places in guest memory. Console output streams from
/// COM1; the run's end (exit, panic, fault with the faulting stack) comes back
/// on the control port and becomes the same RunReport as on KVM.
public struct QEMUEngine: ImageSetEngine {
    public static let executable = "/usr/bin/qemu-system-x86_64"

    public let kind = EngineKind.qemu

    public init() {}

    public func refusal(of manifest: ImageManifest) -> String? {
        switch QEMUEngine.unfit(manifest) {
        case .mechanismUnavailable(_, let reason)?: return reason
        case let error?: return error.description
        case nil: return nil
        }
    }

    /// What launching `manifest` here would throw before anything is prepared, if anything.
    private static func unfit(_ manifest: ImageManifest) -> LaunchError? {
        if manifest.mechanism.isolation.vmPerCompartment {
            return .mechanismUnavailable(
                manifest.mechanism,
                reason:
                    "the QEMU engine runs single-VM image sets (fcalls, intel-mpk); vmept needs a VM per compartment: run it on KVM"
            )
        }
        if let (kind, library) = manifest.deviceKinds.first {
            return .mechanismUnavailable(
                manifest.mechanism,
                reason:
                    "the QEMU engine provides no devices, and library \(library.name) declares the \(kind.description); run it on KVM"
            )
        }
        if !FileManager.default.isExecutableFile(atPath: QEMUEngine.executable) {
            return .engineMissing(
                "\(QEMUEngine.executable) is missing: install Debian's qemu-system-x86 (scripts/setup.sh does)")
        }
        return nil
    }

    /// Boots the set under QEMU; its console streams to `console`.
    public func launch(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError)
        -> any RunningImageSet
    {
        try QEMURun(imageSet: imageSet, options: options, console: console)
    }

    /// Boots the set, waits (stopping it after `timeout` seconds) and reports. Nothing is
    /// left behind: QEMU and its files go with the run.
    public func run(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink, timeout: Double?)
        throws(LaunchError) -> RunReport
    {
        try launch(imageSet, options: options, console: console).wait(timeout: timeout)
    }

    /// A run's folder of files for QEMU: the prefix, then the flexosd process's id.
    static let folderPrefix = "flexos-qemu-"

    /// The shim beside the image set (flexosctl build writes it for single-VM sets).
    static func shim(of imageSet: ImageSet) -> String {
        (imageSet.image.path as NSString).deletingLastPathComponent + "/qemu-shim.elf"
    }

    /// The set's guest memory, once the engine has what it needs to run it.
    static func prepare(_ imageSet: ImageSet, options: LaunchOptions) throws(LaunchError) -> PreparedMemory {
        if let error = unfit(imageSet.manifest) { throw error }
        if let address = options.listen.first {
            throw LaunchError.noNetworkDevice(imageSet: imageSet.manifest.name, address: address.description)
        }
        let shim = shim(of: imageSet)
        guard FileManager.default.fileExists(atPath: shim) else {
            throw LaunchError.engineMissing(
                "\(shim) is missing: rebuild the image set with flexosctl build, which writes the QEMU shim beside single-VM images"
            )
        }
        return try PreparedMemory(imageSet: imageSet, options: options)
    }

    /// QEMU's command line: its RAM is `ram` (flexosd maps it too), the console is COM1 on
    /// standard output, and the control port COM2 connects to the hypercall server's socket.
    static func arguments(_ files: PreparedMemory.Files, ram: SharedRAM, shim: String) -> [String] {
        ram.arguments + [
            "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "\(ram.memory.size >> 20)M",
            "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none", "-parallel", "none",
            "-kernel", shim,
            "-chardev", "stdio,id=console,signal=off", "-device", "isa-serial,chardev=console,index=0",
            "-chardev", "socket,id=control,path=\(files.controlSocket)", "-device", "isa-serial,chardev=control,index=1"
        ] + QEMUEngine.devicesWithoutLibvirtElement(files)
    }

    /// The devices libvirt has no element for: the loaders that place the prepared memory,
    /// and isa-debug-exit, which ends QEMU. (The shim's console and control port are the
    /// serial ports COM1 and COM2, which libvirt's `<serial>` devices are.)
    static func devicesWithoutLibvirtElement(_ files: PreparedMemory.Files) -> [String] {
        [
            "-device", "loader,file=\(files.staging),addr=\(FLEXOS_SHIM_STAGING),force-raw=on",
            "-device", "loader,file=\(files.handoff),addr=\(FLEXOS_SHIM_HANDOFF),force-raw=on",
            "-device", "loader,file=\(files.shared),addr=\(FLEXOS_SHARED_BASE),force-raw=on",
            "-device", "isa-debug-exit,iobase=\(FLEXOS_SHIM_EXIT_PORT),iosize=4"
        ]
    }

    /// What another QEMU launcher (a libvirt domain) needs to boot the set under TCG.
    public struct Export: @unchecked Sendable {
        /// The memory it was prepared from.
        let prepared: PreparedMemory
        /// Guest memory to give QEMU.
        public let memoryBytes: UInt64
        /// The ring-0 shim, booted as the kernel.
        public let shim: String
        /// QEMU arguments for the devices libvirt has no element for (`devicesWithoutLibvirtElement`).
        public let passthroughArguments: [String]
        /// The file of the console (COM1).
        public let console: String
        /// COM2: the file where the shim reports the run's end (exit, panic, fault), or, when
        /// flexosd serves the run (`session`), the socket flexosd listens on.
        public let control: String
        /// Flexosd's side of a run it serves: the shim forwards its hypercalls to it.
        public let session: ShimSession?

        public var imageSetName: String { prepared.imageSet.manifest.name }
        /// The name of its one VM ("comp1", "comp1+comp2").
        public var machineName: String { prepared.layout.compartments[0].name }
    }

    /// Writes the set's prepared memory into `folder` (made readable by every user: another
    /// user's QEMU, such as libvirt's, reads it) and returns how to boot it. `servedByFlexosd`:
    /// this flexosd will serve its hypercalls (`Export.session`) on QEMU's RAM, which must
    /// then be a memory file flexosd can open; otherwise the shim serves them itself.
    public func export(_ imageSet: ImageSet, options: LaunchOptions, to folder: String, servedByFlexosd: Bool = false)
        throws(LaunchError) -> Export
    {
        let prepared = try QEMUEngine.prepare(imageSet, options: options)
        let shim = QEMUEngine.shim(of: imageSet)
        var session: ShimSession? = nil
        let files: PreparedMemory.Files
        if servedByFlexosd {
            session = try ShimSession(prepared: prepared, folder: folder)
            files = session!.files
        } else {
            files = try prepared.write(to: folder, servedByFlexosd: false)
        }
        let console = folder + "/console.log"
        let shimCopy = folder + "/qemu-shim.elf"
        do {
            try? FileManager.default.removeItem(atPath: shimCopy)
            try FileManager.default.copyItem(atPath: shim, toPath: shimCopy)
            try Data().write(to: URL(fileURLWithPath: console))
            for file in [files.staging, files.handoff, files.shared, shimCopy] {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
            }
            // The ports are written by QEMU, whichever user it runs as.
            for file in [files.control, console] {
                try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: file)
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder)
        } catch {
            throw LaunchError.cannotWrite(path: folder, reason: error.localizedDescription)
        }
        return Export(
            prepared: prepared, memoryBytes: prepared.qemuMemory, shim: shimCopy,
            passthroughArguments: QEMUEngine.devicesWithoutLibvirtElement(files), console: console,
            control: session == nil ? files.control : files.controlSocket, session: session)
    }
}
