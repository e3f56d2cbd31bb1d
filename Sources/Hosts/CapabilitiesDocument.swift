import Foundation
import FoundationXML

/// libvirt's capabilities and domain-capabilities documents, read with libxml2 (through
/// FoundationXML) for the few facts FlexOS decides by.
struct CapabilitiesDocument {
    private let document: XMLDocument

    init(_ text: String, what: String) throws(HostError) {
        do { document = try XMLDocument(xmlString: text, options: []) } catch {
            throw HostError.unreadable(what, "\(error)")
        }
    }

    /// The text of every node `path` selects, in document order.
    func strings(_ path: String) -> [String] {
        ((try? document.nodes(forXPath: path)) ?? []).compactMap {
            $0.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func string(_ path: String) -> String? { strings(path).first.flatMap { $0.isEmpty ? nil : $0 } }

    /// Host facts of a capabilities document (`virsh capabilities`).
    var architecture: String? { string("/capabilities/host/cpu/arch") }
    var cpuModel: String? { string("/capabilities/host/cpu/model") }
    var cpuVendor: String? { string("/capabilities/host/cpu/vendor") }
    var cpuFeatures: Set<String> { Set(strings("/capabilities/host/cpu/feature/@name")) }

    /// The domain types the host runs x86-64 hardware-virtual guests with.
    var x86DomainTypes: [String] {
        strings("/capabilities/guest[os_type='hvm']/arch[@name='x86_64']/domain/@type")
    }

    /// Of a domain-capabilities document (`virsh domcapabilities`): whether its
    /// host-model CPU requires pku, or, for KVM, host-passthrough hands the host's pku on.
    func offersProtectionKeys(hostHasThem: Bool, type: String) -> Bool {
        let hostModel = "/domainCapabilities/cpu/mode[@name='host-model'][@supported='yes']"
        if strings(hostModel + "/feature[@policy='require']/@name").contains("pku") { return true }
        let passthrough = "/domainCapabilities/cpu/mode[@name='host-passthrough'][@supported='yes']"
        return type == "kvm" && hostHasThem && !strings(passthrough + "/@name").isEmpty
    }
}

/// Why a host could not be described.
public enum HostError: Error, CustomStringConvertible, Sendable {
    case libvirt(LibvirtError)
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .libvirt(let error): error.description
        case .unreadable(let what, let why): "libvirt's \(what) is not readable XML: \(why)"
        }
    }
}
