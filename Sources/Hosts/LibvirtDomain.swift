import Foundation
import FoundationXML

/// A libvirt domain that boots a single-VM image set under QEMU's emulation (TCG), the
/// way flexosd's QEMU engine does: libvirt's own elements for the machine, the CPU (`maximum`:
/// TCG's model, which has PKU), the kernel (the ring-0 shim) and the serial ports the shim
/// writes its console and its report to, and `<qemu:commandline>` only for what libvirt has
/// no element for (the loaders placing prepared memory, isa-debug-exit).
public enum LibvirtDomain {
    static let qemuNamespace = "http://libvirt.org/schemas/domain/qemu/1.0"

    /// What a serial port of the domain is connected to.
    public enum Serial: Sendable {
        /// A file QEMU writes.
        case file(String)
        /// A Unix socket QEMU connects to (one flexosd listens on).
        case socket(String)
    }

    /// The domain's XML; `serials` are COM1, COM2, ... in turn. `sharedMemory`: the RAM is a
    /// memfd that another process (flexosd) may map too.
    public static func xml(
        name: String, memoryBytes: UInt64, kernel: String, serials: [Serial], sharedMemory: Bool = false,
        passthrough: [String]
    ) -> String {
        let domain = element("domain", attributes: ["type": "qemu"])
        domain.addNamespace(XMLNode.namespace(withName: "qemu", stringValue: qemuNamespace) as! XMLNode)
        domain.addChild(element("name", text: name))
        domain.addChild(element("memory", attributes: ["unit": "KiB"], text: "\(memoryBytes / 1024)"))
        if sharedMemory {
            let backing = element("memoryBacking")
            backing.addChild(element("source", attributes: ["type": "memfd"]))
            backing.addChild(element("access", attributes: ["mode": "shared"]))
            domain.addChild(backing)
        }
        domain.addChild(element("vcpu", text: "1"))
        let os = element("os")
        os.addChild(element("type", attributes: ["arch": "x86_64", "machine": "pc"], text: "hvm"))
        os.addChild(element("kernel", text: kernel))
        domain.addChild(os)
        domain.addChild(element("cpu", attributes: ["mode": "maximum"]))
        // isa-debug-exit ends QEMU with a status: libvirt sees a crash, never a reboot.
        for event in ["on_poweroff", "on_reboot", "on_crash"] { domain.addChild(element(event, text: "destroy")) }
        let devices = element("devices")
        devices.addChild(element("controller", attributes: ["type": "usb", "model": "none"]))
        devices.addChild(element("memballoon", attributes: ["model": "none"]))
        for (port, connection) in serials.enumerated() {
            let serial: XMLElement
            switch connection {
            case .file(let path):
                serial = element("serial", attributes: ["type": "file"])
                serial.addChild(element("source", attributes: ["path": path]))
            case .socket(let path):
                serial = element("serial", attributes: ["type": "unix"])
                serial.addChild(element("source", attributes: ["mode": "connect", "path": path]))
            }
            serial.addChild(element("target", attributes: ["port": "\(port)"]))
            devices.addChild(serial)
        }
        domain.addChild(devices)
        let commandLine = element("qemu:commandline")
        for argument in passthrough { commandLine.addChild(element("qemu:arg", attributes: ["value": argument])) }
        domain.addChild(commandLine)
        return XMLDocument(rootElement: domain).xmlString(options: [.nodePrettyPrint]) + "\n"
    }

    private static func element(_ name: String, attributes: [String: String] = [:], text: String? = nil) -> XMLElement {
        let element = XMLElement(name: name)
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            element.addAttribute(XMLNode.attribute(withName: key, stringValue: value) as! XMLNode)
        }
        if let text { element.stringValue = text }
        return element
    }
}
