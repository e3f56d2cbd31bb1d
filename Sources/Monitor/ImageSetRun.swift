import CFlexOSABI
import ControlProtocol
import GuestImage
import GuestMachine
import KVM

/// A launched image set: one VM per compartment (or one for all under `fcalls`), each
/// driven by its own thread, until the first of them ends the run.
public final class ImageSetRun: @unchecked Sendable {
    public let imageSet: ImageSet
    public let layout: ImageSetLayout
    public let startedAt: UInt64
    private let shared: GuestMemory
    private let control: RunControl
    private let runners: [CompartmentRunner]
    private let symbols: LazySymbolizer
    /// Its devices (the network device), each held by one VM.
    package let devices: [any Device]

    /// Creates every VM of `imageSet`, with the devices its libraries declare made by
    /// `deviceProviders`, and starts their vCPUs. On failure nothing is left running.
    package init(
        _ imageSet: ImageSet, options: LaunchOptions, hypervisor: Hypervisor, console: ConsoleSink,
        devices deviceProviders: [any DeviceProvider] = []
    ) throws(LaunchError) {
        startedAt = monotonicNanoseconds()
        self.imageSet = imageSet
        symbols = LazySymbolizer(image: imageSet.image)
        let manifest = imageSet.manifest
        if let reason = KVMEngine.refusal(of: manifest.mechanism, on: hypervisor) {
            let keyless = Mechanism.allCases.filter { !$0.isolation.needsProtectionKeys }.map(\.rawValue)
            throw LaunchError.mechanismUnavailable(
                manifest.mechanism,
                reason: reason
                    + "; run it under emulation with --engine qemu (flexosd launch or flexosctl launch), or rebuild with mechanism \(keyless.joined(separator: " or "))"
            )
        }
        layout = try ImageSetLayout(
            image: imageSet.image, manifest: manifest, memory: options.memory, sharedMemory: options.sharedMemory)
        do {
            shared = try GuestMemory(name: "flexos:\(manifest.name):shared", size: options.sharedMemory)
        } catch { throw LaunchError.kvm(error) }
        try SharedArea.initialise(shared, image: imageSet.image, layout: layout)
        devices = try ImageSetRun.makeDevices(for: manifest, options: options, providers: deviceProviders)

        let applicationMachine =
            layout.machineIndex(of: manifest.libraries.first { $0.name == manifest.application }?.compartment ?? "")
            ?? 0
        let doorbells = hypervisor.offersDoorbells && options.doorbells
        let sleepInKernel = hypervisor.offersInterrupts && options.sleepInKernel
        var machines: [CompartmentMachine] = []
        for index in layout.compartments.indices {
            machines.append(
                try CompartmentMachine(
                    hypervisor: hypervisor, setName: manifest.name, imageSet: layout, index: index,
                    image: imageSet.image, shared: shared, applicationCompartment: applicationMachine,
                    devices: devices, doorbells: doorbells, sleepInKernel: sleepInKernel,
                    haltPolling: options.haltPolling))
        }
        do {
            control = try RunControl(vcpus: machines.map(\.vcpu), names: machines.map(\.layout.name))
            if doorbells { try ImageSetRun.wireDoorbells(of: machines, to: control) }
            if sleepInKernel {
                for (index, machine) in machines.enumerated() {
                    try machine.virtualMachine.raise(
                        vector: ExceptionEntry.wakeVector, whenSignalled: control.wakeEvent(of: index))
                }
            }
        } catch {
            throw LaunchError.kvm(error)
        }
        let layout = self.layout
        let symbols = self.symbols
        let exports = manifest.exports
        runners = machines.map { [control] machine in
            CompartmentRunner(
                machine: machine, compartmentCount: machines.count, control: control, console: console,
                confinedHook: options.onConfinedVCPUThread
            ) {
                FaultAnalyzer(
                    compartment: machine.layout, imageSet: layout, pageTables: machine.pageTables,
                    space: machine.addressSpace,
                    symbolizer: symbols.value, exports: exports)
            }
        }
        try startThreads()
    }

    private func startThreads() throws(LaunchError) {
        do {
            for device in devices { try start(device) }
            for runner in runners {
                control.add(try MonitorThread(name: "vcpu-\(runner.machine.layout.name)") { runner.run() })
            }
        } catch {
            control.finish { .failed(message: error.description) }
            control.joinAll()
            throw error
        }
    }

    /// Wires the doorbells of every VM in the kernel (flexos_abi.h, "Doorbells"): a store to
    /// compartment t's signals t's wake eventfd, and a store to a device's, in the VM that
    /// holds it, the device's. Neither side leaves KVM for it.
    private static func wireDoorbells(of machines: [CompartmentMachine], to control: RunControl)
        throws(KVMError)
    {
        for machine in machines {
            for target in machines.indices {
                try machine.virtualMachine.addDoorbell(
                    at: FLEXOS_DOORBELL_WINDOW + 8 * UInt64(target), signalling: control.wakeEvent(of: target))
            }
            for case let (address, event)? in machine.memory.devices.map(\.doorbell) {
                try machine.virtualMachine.addDoorbell(at: address, signalling: event)
            }
        }
    }

    /// The devices `manifest` declares, from the provider of each kind. Every provider
    /// checks the options first (`--listen` for a set without a network device is refused).
    private static func makeDevices(
        for manifest: ImageManifest, options: LaunchOptions, providers: [any DeviceProvider]
    ) throws(LaunchError) -> [any Device] {
        for provider in providers { try provider.check(options, imageSet: manifest) }
        // A device made before a failure is released with the others: its memory and sockets close in deinit.
        return try providers.providers(for: manifest).map { (provider) throws(LaunchError) in
            try provider.makeDevice(for: manifest, options: options)
        }
    }

    /// Runs `device`'s loop on a thread of its own until the run ends; a guest that breaks
    /// the device's protocol ends the run with a report naming the device.
    private func start(_ device: any Device) throws(LaunchError) {
        guard let machine = layout.machine(holding: device.kind) else { return }
        let control = self.control
        let name = layout.compartments[machine].name
        control.add(
            try MonitorThread(name: "\(device.kind.name)-\(name)") {
                guard let violation = device.run(wakeGuest: { control.wake(machine) }) else { return }
                control.finish { .faulted(FaultReport(violation, of: device.kind, compartment: name)) }
            })
        control.whenFinished { device.stop() }
    }

    /// What `address` maps to in the VM that runs `compartment`, read from the page tables
    /// that VM runs on; nil when it is not mapped there.
    public func mapping(of address: UInt64, inCompartment compartment: String) -> PagePermissions? {
        guard let index = layout.machineIndex(of: compartment) else { return nil }
        return runners[index].machine.pageTables.translate(address)?.permissions
    }

    /// Per VM: its counters, what its vCPU does, and its gate statistics from the gate block.
    func runnerReports() -> [(report: CompartmentReport, activity: VCPUActivity, gates: CompartmentSnapshot.Gates)] {
        runners.map { runner in
            let gates = GateInspector(space: runner.machine.addressSpace, gateBlock: layout.gateBlock.lowerBound).gates(
                of: runner.machine.layout.index)
            return (runner.report(), runner.activity.withLock { $0 }, gates)
        }
    }

    /// "comp1 was at spin.appMain() + 0x1c (Tests/Guests/spin/main.swift:7)", per VM, for a
    /// run the monitor stopped. Only valid once the vCPU threads have left KVM_RUN.
    private func whereTheVCPUsAre() -> [String] {
        let symbols = self.symbols.value
        return runners.compactMap { runner in
            guard var rip = try? runner.machine.vcpu.registers().rip else { return nil }
            var doing = "was at"
            if let caller = ExceptionEntry.sleepCaller(rip: rip, space: runner.machine.addressSpace) {
                (rip, doing) = (caller, "slept in the kernel, called from")
            }
            let location = symbols.sourceLocation(of: rip).map { " (\($0))" } ?? ""
            return "\(runner.machine.layout.name) \(doing) \(symbols.describe(rip))\(location)"
        }
    }

    /// Whether the run has ended.
    public var isFinished: Bool { control.isFinished }

    /// Ends the run from outside (a user's stop, a daemon shutting down).
    public func stop(reason: String) {
        control.finish { .stopped(reason: reason) }
    }

    /// Waits for the run to end (stopping it after `timeout` seconds), joins its threads and reports.
    public func wait(timeout: Double? = nil) -> RunReport {
        if !control.waitForEnd(timeout: timeout) {
            control.finish { .timedOut(seconds: timeout ?? 0, locations: []) }
        }
        control.joinAll()
        var end = control.end ?? .failed(message: "the run ended without a cause")
        if let fault = control.pendingFault { end = .faulted(runners[fault.machine].analyze(fault)) }
        if case .panicked(let message, let location, let compartment) = end, let code = control.panicCode {
            end = .panicked(
                message: message, location: runners[code.machine].describeCode(at: code.address) ?? location,
                compartment: compartment)
        }
        if case .timedOut(let seconds, _) = end { end = .timedOut(seconds: seconds, locations: whereTheVCPUsAre()) }
        var report = RunReport(
            imageSet: imageSet.manifest.name, end: end,
            startedAt: startedAt, firstHypercallAt: control.firstHypercallAt, endedAt: monotonicNanoseconds(),
            compartments: runners.map { $0.report() })
        report.devices = devices.map { $0.report() }
        return report
    }
}

/// The image's symbolizer, built on first use and then shared: a run that never faults
/// never reads the symbol table or DWARF.
final class LazySymbolizer: @unchecked Sendable {
    private let image: ELFImage
    private let built = Locked<Symbolizer?>(nil)

    init(image: ELFImage) { self.image = image }

    var value: Symbolizer {
        built.withLock { cached in
            if let cached { return cached }
            let symbolizer = Symbolizer(image: image)
            cached = symbolizer
            return symbolizer
        }
    }
}
