import ArgumentParser

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexos-bench",
        abstract: "FlexOS benchmarks. Each compares the thing measured with a baseline in the same run.",
        subcommands: [
            LaunchLatency.self, GateLatency.self, DaemonLatency.self, KeyValueThroughput.self, NotificationCost.self,
            WakeLatency.self, DefaultRun.self
        ])
}
