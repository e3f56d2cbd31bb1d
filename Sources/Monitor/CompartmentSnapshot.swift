import ControlProtocol
import GuestMachine

extension ImageSetRun {
    /// The state of every VM of the set, now.
    public func inspect() -> [CompartmentSnapshot] {
        zip(layout.compartments, runnerReports()).map { machine, runner in
            let held = devices.filter { machine.devices.contains($0.kind) }
            return CompartmentSnapshot(
                machine: machine, manifest: imageSet.manifest, activity: runner.activity, gates: runner.gates,
                report: runner.report, devices: held.isEmpty ? nil : held.map { $0.report() })
        }
    }
}
