import FoundationEssentials
import Glibc
import GuestImage
import GuestMachine
import Monitor

/// Whether the host can give an image set the memory it asks for: the daemon adds up what
/// every running set was promised (guest memory is taken lazily, so what is in use now
/// says little) and refuses a launch that would promise more than the host's memory or the
/// memory limit of the daemon's cgroup, instead of being killed by the kernel later with
/// every set it holds.
public struct MemoryAdmission: Sendable {
    /// Kept for the daemon itself (its threads, io_uring, page tables).
    public static let daemonReserve: UInt64 = 256 << 20

    /// The bytes of guest memory a launch of `manifest` with `options` promises.
    public static func promised(by manifest: ImageManifest, options: LaunchOptions) -> UInt64 {
        let machines = UInt64(ImageSetLayout.machines(manifest).count)
        let devices = manifest.deviceKinds.map(\.kind.bytes).reduce(0, +)
        let (privateBytes, overflow) = machines.multipliedReportingOverflow(by: options.memory)
        let (withShared, sharedOverflow) = privateBytes.addingReportingOverflow(options.sharedMemory)
        let (total, devicesOverflow) = withShared.addingReportingOverflow(devices)
        return overflow || sharedOverflow || devicesOverflow ? .max : total
    }

    /// What may be promised in all: the host's memory, or the cgroup's limit if lower,
    /// less the daemon's own reserve.
    public static var limit: UInt64 {
        let host = meminfo("MemTotal") ?? .max
        let limit = min(host, cgroupLimit ?? .max)
        return limit > daemonReserve ? limit - daemonReserve : 0
    }

    /// Where the limit comes from, for messages.
    public static var limitSource: String {
        (cgroupLimit ?? .max) < (meminfo("MemTotal") ?? .max)
            ? "the memory limit of flexosd's cgroup" : "the host's memory"
    }

    /// kB values of /proc/meminfo, in bytes.
    static func meminfo(_ field: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let number = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
            return number.map { $0 * 1024 }
        }
        return nil
    }

    /// The memory limit of this process's cgroup (v2 memory.max or v1 memory.limit_in_bytes).
    static var cgroupLimit: UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        var candidates: [String] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                candidates += ["/sys/fs/cgroup\(parts[2])/memory.max", "/sys/fs/cgroup/unified\(parts[2])/memory.max"]
            } else if parts[1].split(separator: ",").contains("memory") {
                candidates.append("/sys/fs/cgroup/memory\(parts[2])/memory.limit_in_bytes")
            }
        }
        let limits = candidates.compactMap { path -> UInt64? in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return UInt64(text.split(separator: "\n").first ?? "")  // "max" is no limit
        }
        return limits.min()
    }
}
