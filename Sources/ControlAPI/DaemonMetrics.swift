import CoreMetrics
import Monitor
import Prometheus

/// The daemon's metrics in Prometheus text format (swift-metrics with the Prometheus
/// exporter). Counters move as things happen; per-VM gauges are read from the registry
/// when /metrics is scraped.
final class DaemonMetrics: @unchecked Sendable {
    private let collectors = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let launches: CoreMetrics.Counter
    private let running: CoreMetrics.Gauge

    init() {
        factory = PrometheusMetricsFactory(registry: collectors)
        launches = CoreMetrics.Counter(label: "flexosd_image_sets_launched_total", factory: factory)
        running = CoreMetrics.Gauge(label: "flexosd_image_sets_running", factory: factory)
    }

    func launched() { launches.increment() }

    func ended(_ status: ImageSetStatus) {
        CoreMetrics.Counter(label: "flexosd_image_sets_ended_total", dimensions: [("outcome", status.state)], factory: factory).increment()
    }

    /// The text of /metrics, with per-VM gauges for every running image set.
    func render(_ registry: ImageSetRegistry) -> String {
        running.record(registry.runningCount)
        for set in registry.list() where set.state == "running" {
            for compartment in (try? registry.inspect(set.name)) ?? [] {
                let labels = [("image_set", set.name), ("compartment", compartment.name)]
                CoreMetrics.Gauge(label: "flexosd_vm_exits", dimensions: labels, factory: factory).record(Double(compartment.kvmStatistics["exits"] ?? 0))
                CoreMetrics.Gauge(label: "flexosd_gate_calls_out", dimensions: labels, factory: factory).record(Double(compartment.gates.callsOut))
                CoreMetrics.Gauge(label: "flexosd_gate_calls_in", dimensions: labels, factory: factory).record(Double(compartment.gates.callsIn))
            }
        }
        var text: [UInt8] = []
        collectors.emit(into: &text)
        return String(decoding: text, as: UTF8.self)
    }
}
