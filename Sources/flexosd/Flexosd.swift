import ArgumentParser

@main
struct Flexosd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flexosd",
        abstract: "The FlexOS monitor: runs image sets on /dev/kvm.",
        discussion: """
            Without a subcommand flexosd serves its control API on a Unix socket (HTTP with JSON bodies, as Firecracker does) until SIGTERM or SIGINT; drive it with flexosctl. `flexosd launch` boots one image set in the foreground instead.

            Every compartment of an image set runs in a VM entered directly in 64-bit ring 3, with page tables the monitor builds; the guest talks to the monitor through hypercalls. Build image sets with `flexosctl build`.
            """,
        version: "0.1.0",
        subcommands: [Serve.self, Launch.self],
        defaultSubcommand: Serve.self)
}
