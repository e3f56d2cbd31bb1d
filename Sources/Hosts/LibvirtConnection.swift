import CLibvirt
import Foundation

/// A failure of libvirt, with libvirt's own message.
public struct LibvirtError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ what: String) {
        let detail = virGetLastErrorMessage().map { String(cString: $0) } ?? "no detail from libvirt"
        description = "\(what): \(detail)"
    }
}

/// A connection to one libvirt host: to ask what it is, and to start domains there.
/// Read-write when the caller may (libvirt answers domain capabilities and starts domains
/// only then), else read-only. Closed when released.
final class LibvirtConnection {
    let uri: String
    private let connection: virConnectPtr
    var pointer: virConnectPtr { connection }

    init(uri: String) throws(LibvirtError) {
        // libvirt prints every error on stderr unless told otherwise; ours carry its message.
        virSetErrorFunc(nil) { _, _ in }
        guard let connection = virConnectOpen(uri) ?? virConnectOpenReadOnly(uri) else {
            throw LibvirtError(
                "cannot connect to \(uri) (is libvirtd running there? without systemd: virtlogd -d; libvirtd -d)")
        }
        self.uri = uri
        self.connection = connection
    }

    deinit { virConnectClose(connection) }

    /// The host's capabilities document (`virsh capabilities`).
    func capabilities() throws(LibvirtError) -> String {
        try take(virConnectGetCapabilities(connection), "cannot read the capabilities of \(uri)")
    }

    /// What a domain of `type` (kvm, qemu) can be given on this host (`virsh
    /// domcapabilities --virttype TYPE`).
    func domainCapabilities(type: String, architecture: String) throws(LibvirtError) -> String {
        try take(
            virConnectGetDomainCapabilities(connection, nil, architecture, nil, type, 0),
            "cannot read what \(type) domains get on \(uri)")
    }

    /// The host's name, memory (bytes) and logical CPUs.
    func node() throws(LibvirtError) -> (hostname: String?, memoryBytes: UInt64, cpus: Int) {
        var info = virNodeInfo()
        guard virNodeGetInfo(connection, &info) == 0 else { throw LibvirtError("cannot read the node of \(uri)") }
        let name = virConnectGetHostname(connection)
        defer { free(name) }
        let (memory, overflow) = UInt64(info.memory).multipliedReportingOverflow(by: 1024)
        return (name.map { String(cString: $0) }, overflow ? .max : memory, Int(info.cpus))
    }

    /// A string libvirt allocated, copied and freed.
    private func take(_ text: UnsafeMutablePointer<CChar>?, _ what: String) throws(LibvirtError) -> String {
        guard let text else { throw LibvirtError(what) }
        defer { free(text) }
        return String(cString: text)
    }
}
