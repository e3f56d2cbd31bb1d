import CKVM
import Glibc
import GuestMachine
import Monitor

/// The user whose permissions the daemon borrows to open a client's files.
///
/// flexosd launchs as root; a member of `--socket-group` must not be able to launch (or probe
/// for) files only root can read. The daemon takes the client's credentials from the
/// socket (SO_PEERCRED) and opens its files on a thread that holds the client's
/// file-system identity: the kernel checks permissions as it would for the client.
public struct FileAccessIdentity: Sendable, Equatable {
    public var uid: uid_t
    public var gid: gid_t

    public init(uid: uid_t, gid: gid_t) {
        self.uid = uid
        self.gid = gid
    }

    /// The identity this process opens files with.
    public static var current: FileAccessIdentity { FileAccessIdentity(uid: geteuid(), gid: getegid()) }

    /// Runs `body` on a thread of its own that opens files as this user, and returns what
    /// it returned. When this is the process's own identity, `body` runs here.
    func withFileAccess<T: Sendable>(_ body: @escaping @Sendable () throws(LaunchError) -> T) throws(LaunchError) -> T {
        if self == .current { return try body() }
        let groups = supplementaryGroups()
        let outcome = Locked<Result<T, LaunchError>?>(nil)
        let thread = try MonitorThread(name: "open-as-\(uid)") {
            let taken = groups.withUnsafeBufferPointer { ckvm_take_file_identity(uid, gid, $0.baseAddress, $0.count) }
            guard taken == 0 else {
                outcome.withLock { $0 = .failure(.cannotActAs(uid: uid)) }
                return
            }
            do throws(LaunchError) {
                let value = try body()
                outcome.withLock { $0 = .success(value) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        thread.join()
        guard let result = outcome.withLock({ $0 }) else { throw LaunchError.cannotActAs(uid: uid) }
        return try result.get()
    }

    /// The user's supplementary groups from the group database (its primary group alone
    /// when the user has no entry there).
    private func supplementaryGroups() -> [gid_t] {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, let found, let name = found.pointee.pw_name
        else { return [gid] }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return [gid] }
        }
        return Array(groups.prefix(Int(count)))
    }
}

extension ImageSet {
    /// Opens the image set at `path` with `identity`'s permissions (by default this
    /// process's own).
    public static func open(_ path: String, as identity: FileAccessIdentity?) throws(LaunchError) -> ImageSet {
        guard let identity else { return try open(path) }
        return try identity.withFileAccess { () throws(LaunchError) in try open(path) }
    }
}
