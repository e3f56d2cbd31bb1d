import CLibvirt

/// A transient libvirt domain this process created: it exists while it runs, and libvirt
/// forgets it once it ends. Holds its own connection, so it outlives whoever started it.
public final class TransientDomain: @unchecked Sendable {
    public let name: String
    /// The host it runs on.
    public let uri: String
    private let connection: LibvirtConnection
    private let domain: virDomainPtr

    /// Starts the domain `xml` describes on `uri` (virDomainCreateXML).
    public init(uri: String, xml: String) throws(LibvirtError) {
        connection = try LibvirtConnection(uri: uri)
        guard let domain = virDomainCreateXML(connection.pointer, xml, 0) else {
            throw LibvirtError("\(uri) refused to start the domain")
        }
        self.uri = uri
        self.domain = domain
        name = virDomainGetName(domain).map { String(cString: $0) } ?? "?"
    }

    deinit { virDomainFree(domain) }

    /// Whether it still runs. A domain libvirt no longer knows has ended.
    public var isActive: Bool { virDomainIsActive(domain) == 1 }

    /// Ends it at once (virDomainDestroy: QEMU is killed). Nothing when it has ended.
    public func destroy() {
        guard isActive else { return }
        _ = virDomainDestroy(domain)
    }
}
