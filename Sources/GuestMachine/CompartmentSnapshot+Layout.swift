import ControlProtocol
import GuestImage

extension CompartmentSnapshot {
    /// No gate call counted (an engine that cannot read the gate block while it runs).
    package static let noGates = Gates(
        callsOut: 0, callsIn: 0, sampledCalls: 0, meanNanoseconds: nil, maxNanoseconds: nil)

    /// What `machine` of an image set looks like: its regions, libraries, hardening and
    /// keys from the layout, and what its engine counted.
    package init(
        machine: ImageSetLayout.Compartment, manifest: ImageManifest, activity: VCPUActivity, gates: Gates,
        report: CompartmentReport, devices: [DeviceReport]? = nil
    ) {
        let regions = machine.mapped.filter { $0.kind != .hypercallWindow }.map { region in
            Region(
                kind: region.kind.rawValue, section: region.detail, library: region.library,
                start: region.range.lowerBound,
                size: region.size, permissions: region.permissions.description, shared: region.isShared)
        }
        let members = manifest.compartments.filter { machine.members.contains($0.name) }
        self.init(
            name: machine.name, compartments: machine.members, mechanism: manifest.mechanism.rawValue,
            libraries: manifest.libraries.filter { machine.members.contains($0.compartment) }.map(\.name),
            hardening: Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.hardening.map(\.rawValue)) }),
            vcpu: activity, regions: regions,
            privateBytes: regions.filter { !$0.shared }.map(\.size).reduce(0, +),
            sharedBytes: regions.filter(\.shared).map(\.size).reduce(0, +),
            gates: gates, exits: report.exits, hypercalls: report.hypercalls,
            kvmStatistics: report.kvmStatistics, consoleBytes: report.consoleBytes, devices: devices,
            protectionKeys: machine.keyed.isEmpty
                ? nil
                : machine.keyed.map {
                    ProtectionKey(compartment: $0.name, key: $0.key, pkru: hex(UInt64($0.pkru)))
                },
            notification: report.notification, woken: report.notification == nil ? nil : report.woken)
    }
}
