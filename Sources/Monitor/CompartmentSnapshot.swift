import ControlProtocol
import GuestImage
import GuestMachine
import NetworkDevice

extension NetworkReport {
    /// What `device` has counted so far.
    init(_ device: NetworkDevice) {
        let statistics = device.statistics
        self.init(
            listening: device.listeners.map(\.boundAddress.description),
            accepted: statistics.accepted.load(ordering: .relaxed),
            refused: statistics.refused.load(ordering: .relaxed),
            closed: statistics.closed.load(ordering: .relaxed), timedOut: statistics.timedOut.load(ordering: .relaxed),
            bytesReceived: statistics.bytesReceived.load(ordering: .relaxed),
            bytesSent: statistics.bytesSent.load(ordering: .relaxed), kicks: statistics.kicks.load(ordering: .relaxed),
            wakes: statistics.wakes.load(ordering: .relaxed))
    }
}

extension ImageSetRun {
    /// The state of every VM of the set, now.
    public func inspect() -> [CompartmentSnapshot] {
        zip(layout.compartments, runnerReports()).map { machine, runner in
            CompartmentSnapshot(
                machine: machine, manifest: imageSet.manifest, activity: runner.activity, gates: runner.gates,
                report: runner.report,
                network: machine.index == layout.networkMachine ? network.map(NetworkReport.init) : nil)
        }
    }
}
