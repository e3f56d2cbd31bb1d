import CLibvirt
import Glibc

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

    /// Destroys the running transient domains of `uri` whose name `isOrphan` picks (those a
    /// killed flexosd left behind). Returns their names.
    @discardableResult
    public static func destroy(on uri: String, where isOrphan: (String) -> Bool) throws(LibvirtError) -> [String] {
        let connection = try LibvirtConnection(uri: uri)
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let flags = UInt32(VIR_CONNECT_LIST_DOMAINS_ACTIVE.rawValue | VIR_CONNECT_LIST_DOMAINS_TRANSIENT.rawValue)
        let count = virConnectListAllDomains(connection.pointer, &list, flags)
        guard count >= 0, let list else { throw LibvirtError("cannot list the domains of \(uri)") }
        defer { free(list) }
        var destroyed: [String] = []
        for index in 0..<Int(count) {
            guard let domain = list[index] else { continue }
            defer { virDomainFree(domain) }
            let name = virDomainGetName(domain).map { String(cString: $0) } ?? ""
            if isOrphan(name) && virDomainDestroy(domain) == 0 { destroyed.append(name) }
        }
        return destroyed
    }
}
