import ControlProtocol
import CoreMetrics
import GuestMachine
import Monitor
import Prometheus

/// The daemon's metrics in Prometheus text format (swift-metrics with the Prometheus
/// exporter). Counters move as things happen; per-VM gauges are read from the registry
/// when /metrics is scraped.
final class DaemonMetrics: @unchecked Sendable {
    private let collectors = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let running: CoreMetrics.Gauge

    init() {
        factory = PrometheusMetricsFactory(registry: collectors)
        running = CoreMetrics.Gauge(label: "flexosd_image_sets_running", factory: factory)
    }

    func launched(_ status: ImageSetStatus) {
        CoreMetrics.Counter(
            label: "flexosd_image_sets_launched_total", dimensions: [("engine", status.engine ?? "")], factory: factory
        ).increment()
    }

    func ended(_ status: ImageSetStatus) {
        CoreMetrics.Counter(
            label: "flexosd_image_sets_ended_total",
            dimensions: [("outcome", status.state), ("engine", status.engine ?? "")], factory: factory
        )
        .increment()
    }

    /// The text of /metrics, with per-VM gauges for every running image set.
    ///
    /// Per-VM gauges are written at each scrape from what runs now rather than kept in
    /// the collector registry, so a removed image set leaves no series behind.
    func render(_ registry: ImageSetRegistry) -> String {
        running.record(registry.runningCount)
        var text: [UInt8] = []
        collectors.emit(into: &text)
        var perVM: [(name: String, samples: [String])] = [
            ("flexosd_vm_exits", []), ("flexosd_gate_calls_out", []), ("flexosd_gate_calls_in", [])
        ]
        var deviceSamples: [String] = []
        for set in registry.list() where set.state == "running" {
            for compartment in (try? registry.inspect(set.name)) ?? [] {
                let labels =
                    "{image_set=\"\(prometheusEscaped(set.name))\",compartment=\"\(prometheusEscaped(compartment.name))\",engine=\"\(set.engine ?? "")\"}"
                let values = [
                    compartment.kvmStatistics["exits"] ?? 0, compartment.gates.callsOut, compartment.gates.callsIn
                ]
                for index in perVM.indices {
                    perVM[index].samples.append("\(perVM[index].name)\(labels) \(values[index])")
                }
                deviceSamples += deviceCounters(compartment, labels: labels)
            }
        }
        var result = String(decoding: text, as: UTF8.self)
        for gauge in perVM + [("flexosd_device_counter", deviceSamples)] where !gauge.samples.isEmpty {
            result += "# TYPE \(gauge.name) gauge\n" + gauge.samples.joined(separator: "\n") + "\n"
        }
        return result
    }

    /// One sample per counter of each device the VM holds, labelled with the device and the
    /// counter (`flexosd_device_counter{...,device="net",counter="accepted"}`): a device
    /// brings its counters without a change here.
    private func deviceCounters(_ compartment: CompartmentSnapshot, labels: String) -> [String] {
        (compartment.devices ?? []).flatMap { device in
            device.counters.sorted { $0.key < $1.key }.map { counter, value in
                "flexosd_device_counter\(labels.dropLast()),device=\"\(prometheusEscaped(device.kind))\",counter=\"\(prometheusEscaped(counter))\"} \(value)"
            }
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
func prometheusEscaped(_ value: String) -> String {
    var escaped = ""
    for character in value {
        switch character {
        case "\\": escaped += "\\\\"
        case "\"": escaped += "\\\""
        case "\n": escaped += "\\n"
        default: escaped.append(character)
        }
    }
    return escaped
}
