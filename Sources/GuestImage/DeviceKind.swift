import CFlexOSABI

/// A device the monitor can provide, as the guest/monitor ABI (`flexos_abi.h`) defines it:
/// the name a library declares it by (`devices: [net]` in library.yaml) and the window of
/// guest addresses its memory occupies in the one VM that holds it.
///
/// The table is the ABI's (`FLEXOS_DEVICE_KINDS` in flexos_abi.h), known to everything that
/// lays out or checks an image set (the toolchain, every engine, `flexosctl inspect`) without
/// linking the device's code. The code is a `Device` of the KVM engine, in a module of its own.
public struct DeviceKind: Equatable, Hashable, Sendable {
    /// The name in library.yaml and the manifest, e.g. "net".
    public let name: String
    /// What people call it in reports, e.g. "network device".
    public let description: String
    /// Where its memory is mapped in the VM that holds it.
    public let window: Range<UInt64>

    /// Bytes of its memory: what a launch of an image set with this device asks of the host.
    public var bytes: UInt64 { window.upperBound - window.lowerBound }

    /// Every device the ABI defines, in its order.
    public static let all: [DeviceKind] = (0..<flexos_device_kind_count()).map { index in
        let kind = flexos_device_kind_at(index)!.pointee
        return DeviceKind(
            name: String(cString: kind.name), description: String(cString: kind.description),
            window: kind.window_base..<(kind.window_base + kind.window_bytes))
    }

    /// The kind named `name`, if the ABI defines one.
    public static func named(_ name: String) -> DeviceKind? { all.first { $0.name == name } }

    /// "net", for messages that list what may be declared.
    public static var names: String { all.map(\.name).joined(separator: ", ") }
}
