import ArgumentParser
import GuestMachine

@main
struct Flexosctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexosctl",
        abstract: "Build FlexOS image sets (and, with flexosd, run and inspect them).",
        discussion: """
            A conformation (a config.yaml) says which libraries share a compartment, which mechanism isolates compartments (fcalls, vmept, intel-mpk) and how each compartment is hardened. `flexosctl build` turns it into an image set that `flexosd launch` boots, or that a running flexosd launches with `flexosctl launch`.
            """,
        version: "0.1.0",
        subcommands: [
            Build.self, Explore.self, Export.self, HostsCommand.self, Launch.self, List.self, Inspect.self, Logs.self,
            Stop.self, Remove.self
        ])
}
