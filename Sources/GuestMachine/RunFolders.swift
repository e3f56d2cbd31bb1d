import Foundation

/// The folders of files an engine keeps for a run in the temporary directory, named by a
/// prefix, then the flexosd's process id, a dash and a tag: a flexosd killed during a run
/// cannot remove its own, so the next run removes those whose flexosd is gone.
package enum RunFolders {
    package static func removeThoseOfDeadProcesses(prefix: String) {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix)
        {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), isDead(pid) else { continue }
            try? FileManager.default.removeItem(atPath: temporary + "/" + name)
        }
    }

    /// Whether no process `pid` exists (in this PID namespace).
    package static func isDead(_ pid: Int32) -> Bool { pid > 0 && kill(pid, 0) != 0 && errno == ESRCH }
}
