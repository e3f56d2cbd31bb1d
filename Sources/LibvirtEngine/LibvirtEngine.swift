import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import Hosts
import QEMUEngine

/// Runs single-VM image sets (fcalls, intel-mpk) on a libvirt host: the QEMU engine's
/// prepared memory and shim, booted as a transient TCG domain (`flexosctl export --libvirt`
/// writes the same domain). The daemon holds the connection; `--connect URI` names the host.
///
/// Only hosts on this machine (`qemu:///system`): the image files are written here, where
/// the host's QEMU user reads them.
public struct LibvirtEngine: ImageSetEngine {
    public let kind = EngineKind.libvirt

    public init() {}

    /// Never the default: a launch names its host with `--connect`.
    public func refusal(of manifest: ImageManifest) -> String? {
        "the libvirt engine runs image sets on a libvirt host named with --connect URI"
    }

    public func launch(_ imageSet: ImageSet, options: LaunchOptions, console: any ConsoleSink) throws(LaunchError)
        -> any RunningImageSet
    {
        guard let uri = options.connect else {
            throw LaunchError.hostFailed(
                "the libvirt engine needs the host to run on: --connect URI, e.g. qemu:///system")
        }
        try LibvirtEngine.check(uri)
        return try LibvirtRun(imageSet: imageSet, options: options, uri: uri, console: console)
    }

    /// A URI of a host on this machine (`driver:///path`, no host part), in plain
    /// characters: a root daemon must not be made to reach out elsewhere for a caller.
    static func check(_ uri: String) throws(LaunchError) {
        let plain = uri.utf8.count <= 256 && uri.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 32 && $0 != "\\" }
        guard plain, let separator = uri.range(of: ":///"), !uri[..<separator.lowerBound].isEmpty,
            uri[..<separator.lowerBound].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" })
        else {
            throw LaunchError.hostFailed(
                "\(uri.prefix(80).debugDescription) is not a libvirt URI of a host on this machine (e.g. qemu:///system); "
                    + "remote hosts (qemu+ssh://host/system) need the image files copied there, which flexosd does not do yet"
            )
        }
    }
}
