import Foundation
import GuestMachine
import Hosts

/// What a flexosd killed while its sets ran on libvirt leaves behind, and how the next
/// launch clears it: transient domains that run on with nobody to stop them, and folders of
/// image files. Both carry the flexosd's process id, so those of a live flexosd are kept.
enum Orphans {
    static let folderPrefix = "flexos-libvirt-"

    /// `flexos-SET-PIDNS.PID-TAG`: the PID namespace tells this flexosd's process ids from those
    /// of a flexosd in another container that uses the same libvirtd.
    static func domainName(_ set: String, tag: String) -> String {
        "flexos-\(set)-\(pidNamespace).\(getpid())-\(tag)"
    }

    static func destroyDomainsOfDeadRuns(on uri: String) {
        let namespace = pidNamespace
        _ = try? TransientDomain.destroy(on: uri) { name in
            guard name.hasPrefix("flexos-"), let owner = name.split(separator: "-").dropLast().last else {
                return false
            }
            let parts = owner.split(separator: ".")
            guard parts.count == 2, parts[0] == Substring(namespace), let pid = Int32(parts[1]) else { return false }
            return RunFolders.isDead(pid)
        }
    }

    /// The inode of this process's PID namespace ("4026531836").
    private static var pidNamespace: String {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? ""
        return String(link.filter(\.isNumber))
    }
}
