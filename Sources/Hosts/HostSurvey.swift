import Foundation
import KVM

/// Describes hosts: through libvirt where a libvirtd answers, else (for this machine
/// only) through flexosd's own probe of /dev/kvm.
public enum HostSurvey {
    /// This machine's system libvirtd: what `flexosctl hosts` asks when given no URI.
    public static let defaultURI = "qemu:///system"

    /// The host at `uri`. With `fallBackToKVMProbe`, a libvirtd that does not answer is
    /// replaced by the probe of this machine's /dev/kvm, and the description says so.
    public static func describe(_ uri: String, fallBackToKVMProbe: Bool = false) throws(HostError) -> HostDescription {
        do {
            return try describeThroughLibvirt(uri)
        } catch .libvirt(let error) where fallBackToKVMProbe {
            return probeThisMachine(
                note: "no libvirtd answered at \(uri) (\(error)); this is what flexosd's own /dev/kvm probe sees")
        }
    }

    static func describeThroughLibvirt(_ uri: String) throws(HostError) -> HostDescription {
        let connection: LibvirtConnection
        do { connection = try LibvirtConnection(uri: uri) } catch { throw .libvirt(error) }
        let capabilities: CapabilitiesDocument
        let node: (hostname: String?, memoryBytes: UInt64, cpus: Int)
        do {
            capabilities = try CapabilitiesDocument(try connection.capabilities(), what: "capabilities of \(uri)")
            node = try connection.node()
        } catch let error as LibvirtError { throw .libvirt(error) } catch let error as HostError { throw error } catch {
            throw .unreadable("capabilities of \(uri)", "\(error)")
        }
        let features = capabilities.cpuFeatures
        let hypervisors = capabilities.x86DomainTypes.map { type in
            let domain = (try? connection.domainCapabilities(type: type, architecture: "x86_64"))
                .flatMap { try? CapabilitiesDocument($0, what: "domain capabilities") }
            return HostDescription.Hypervisor(
                type: type,
                protectionKeys: domain?.offersProtectionKeys(hostHasThem: features.contains("pku"), type: type))
        }
        let local = isThisMachine(uri)
        let kvm = local ? try? Hypervisor() : nil
        var host = HostDescription(
            uri: uri, source: .libvirt, hostname: node.hostname, architecture: capabilities.architecture ?? "unknown",
            cpuModel: capabilities.cpuModel, cpuVendor: capabilities.cpuVendor,
            deciding: HostDescription.decidingFeatures.filter(features.contains),
            memoryBytes: node.memoryBytes, cpus: node.cpus,
            localKVM: kvm != nil, localKVMProtectionKeys: kvm?.offersProtectionKeys ?? false, hypervisors: hypervisors)
        host.mechanisms = MechanismChoice.mechanisms(on: host)
        return host
    }

    /// This machine as /dev/kvm shows it, for when no libvirtd answers.
    static func probeThisMachine(note: String) -> HostDescription {
        let kvm = try? Hypervisor()
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let pages = UInt64(max(sysconf(Int32(_SC_PHYS_PAGES)), 0))
        let pageSize = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 0))
        var host = HostDescription(
            uri: "local", source: .kvmProbe, note: note, hostname: ProcessInfo.processInfo.hostName,
            architecture: machine,
            deciding: [], memoryBytes: pages.multipliedReportingOverflow(by: pageSize).partialValue,
            cpus: ProcessInfo.processInfo.activeProcessorCount,
            localKVM: kvm != nil, localKVMProtectionKeys: kvm?.offersProtectionKeys ?? false,
            hypervisors: (kvm.map { [.init(type: "kvm", protectionKeys: $0.offersProtectionKeys)] } ?? [])
                + (hasQEMU ? [.init(type: "qemu", protectionKeys: true)] : []))
        host.mechanisms = MechanismChoice.mechanisms(on: host)
        return host
    }

    /// Whether QEMU's x86-64 system emulator is installed, whose TCG `-cpu max` has PKU.
    static var hasQEMU: Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/qemu-system-x86_64")
        }
    }

    /// A URI with no host part, of a driver that runs VMs here (`qemu:///system`,
    /// `qemu+unix:///system`): flexosd beside this flexosctl can reach that host's /dev/kvm.
    /// The `test` driver is libvirt's fake host, not this machine.
    static func isThisMachine(_ uri: String) -> Bool {
        guard let components = URLComponents(string: uri), let scheme = components.scheme else { return false }
        let driver = scheme.split(separator: "+").first.map(String.init) ?? scheme
        return driver == "qemu" && (components.host ?? "").isEmpty && (scheme == driver || scheme.hasSuffix("+unix"))
    }
}
