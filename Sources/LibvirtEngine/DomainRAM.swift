import Foundation
import Glibc
import GuestMachine
import KVM

/// The RAM of a running domain's QEMU, which flexosd maps to serve the shim's hypercalls.
/// The domain's memory is a memfd (`<memoryBacking><source type='memfd'/>`); flexosd finds
/// the QEMU process by the domain's name on its command line (`-name guest=NAME,...`) and
/// opens the memfd through /proc, which takes root (QEMU runs as libvirt's user) and a QEMU
/// in flexosd's PID namespace.
enum DomainRAM {
    static func open(domain name: String, bytes: UInt64) throws(LaunchError) -> (pid: pid_t, ram: OwnedFileDescriptor) {
        guard let pid = qemuProcess(of: name) else {
            throw LaunchError.hostFailed(
                "no QEMU process of domain \(name) in flexosd's /proc: flexosd serves the hypercalls of a libvirt domain on its memory, so the domain's QEMU must run in flexosd's PID namespace"
            )
        }
        let folder = "/proc/\(pid)/fd"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\(entry)"),
                target.hasPrefix("/memfd:")
            else { continue }
            let raw = Glibc.open("\(folder)/\(entry)", O_RDWR | O_CLOEXEC)
            if raw < 0 {
                throw LaunchError.hostFailed(
                    "cannot open the memory of domain \(name) (\(folder)/\(entry)): \(String(cString: strerror(errno))); flexosd serves a libvirt domain's hypercalls on its memory and must run as root for that"
                )
            }
            let fd = OwnedFileDescriptor(raw)
            var status = stat()
            if fstat(raw, &status) == 0, UInt64(status.st_size) >= bytes { return (pid, fd) }
        }
        throw LaunchError.hostFailed("domain \(name)'s QEMU (process \(pid)) has no memory file of \(bytes) bytes")
    }

    /// The process whose command line names `name` as its guest.
    private static func qemuProcess(of name: String) -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                let line = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            let arguments = line.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if arguments.contains(where: { $0 == "guest=\(name)" || $0.hasPrefix("guest=\(name),") }) { return pid }
        }
        return nil
    }
}
