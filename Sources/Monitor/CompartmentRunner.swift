import CKVM
import ControlProtocol
import GuestImage
import GuestMachine
import KVM
import Synchronization

/// Drives one VM's vCPU on its own thread: runs it, handles each exit, counts them.
final class CompartmentRunner: @unchecked Sendable {
    let machine: CompartmentMachine
    private let handler: HypercallHandler
    private let control: RunControl
    private let analyzer: () -> FaultAnalyzer
    private let counters = Locked(Counters())
    /// What the vCPU is doing, for `inspect`: the vCPU cannot be asked while it runs.
    let activity = Locked(VCPUActivity.running)

    struct Counters {
        var exits: [String: UInt64] = [:]
        var hypercalls: [String: UInt64] = [:]
        var consoleBytes: UInt64 = 0
        var woken: UInt64 = 0
    }

    private let confinedHook: (@Sendable () -> Void)?

    init(
        machine: CompartmentMachine, compartmentCount: Int, control: RunControl, console: ConsoleSink,
        confinedHook: (@Sendable () -> Void)? = nil, analyzer: @escaping () -> FaultAnalyzer
    ) {
        self.machine = machine
        self.control = control
        self.confinedHook = confinedHook
        self.analyzer = analyzer
        let name = machine.layout.name
        let index = machine.layout.index
        let counters = self.counters
        handler = HypercallHandler(
            space: machine.addressSpace, console: machine.console, compartmentCount: compartmentCount,
            devices: machine.memory.devices
        ) { bytes in
            counters.withLock { $0.consoleBytes += UInt64(bytes.count) }
            console.write(bytes, compartment: name, index: index)
        }
    }

    /// The vCPU loop. Returns when this VM ends the run or the run has ended.
    func run() {
        defer { activity.withLock { $0 = .stopped } }
        do { try VCPUConfinement.apply(reportingTo: control.violationEvents[machine.layout.index].fd.rawValue) } catch {
            control.finish { .failed(message: "compartment \(machine.layout.name): \(error)") }
            return
        }
        confinedHook?()
        while !control.isFinished {
            let exit: VCPUExit
            do { exit = try machine.vcpu.runUntilExit() } catch {
                control.finish { .failed(message: "compartment \(machine.layout.name): \(error)") }
                return
            }
            counters.withLock { $0.exits[exit.name, default: 0] += 1 }
            if !handle(exit) { return }
        }
    }

    /// Handles one exit; false when this VM is done.
    private func handle(_ exit: VCPUExit) -> Bool {
        switch exit {
        case .interrupted:
            return true
        case .mmioWrite(let address, _, _) where address == GuestLayout.trapReportAddress:
            return reportException()
        case .mmioWrite(let address, let value, let length):
            guard length == 8, let number = Hypercall.number(at: address) else {
                return fault(.badHypercall, "store of \(length) bytes to \(hex(address)), which is not a hypercall")
            }
            if let call = Hypercall(number: number) {
                count(call.name)
                return perform(handler.handle(call, argument: value))
            }
            if let (name, device) = handler.device(owning: number) {
                count(name)
                return perform(handler.handle(number, of: device, argument: value))
            }
            return fault(
                .badHypercall,
                "hypercall \(number), which is none of flexos_abi.h's, nor one of a device compartment \(machine.layout.name) holds"
            )
        case .shutdown:
            drainConsole()
            control.finish(fault: pendingFault())
            return false
        default:
            return fault(.unexpectedExit, "KVM exit \(exit) that FlexOS guests never cause")
        }
    }

    private func perform(_ action: HypercallAction) -> Bool {
        switch action {
        case .resume:
            return true
        case .exit(let code):
            drainConsole()
            control.finish { .exited(code: code, compartment: machine.layout.name) }
            return false
        case .panic(let message, let file, let line, let codeAddress):
            drainConsole()
            let location = file.map { "\($0)" + (line.map { ":\($0)" } ?? "") }
            let code = codeAddress.map { RunControl.PanicCode(machine: machine.layout.index, address: $0) }
            control.finish(panicCode: code) {
                .panicked(message: message, location: location, compartment: machine.layout.name)
            }
            return false
        case .wait(let timeout, let woken):
            activity.withLock { $0 = .sleeping }
            let wasWoken = control.wait(machine.layout.index, timeout: timeout)
            activity.withLock { $0 = .running }
            if wasWoken { counters.withLock { $0.woken += 1 } }
            try? machine.addressSpace.write(UInt64(wasWoken ? 1 : 0), at: woken)
            return true
        case .wake(let target):
            control.wake(target)
            return true
        case .invalid(let message):
            return fault(.badHypercall, message)
        }
    }

    private func count(_ hypercall: String) {
        control.noteHypercall()
        counters.withLock { $0.hypercalls[hypercall, default: 0] += 1 }
    }

    /// Ends the run with the exception a stub of the exception entry reported: the faulting
    /// registers are the vCPU's, with RIP, RSP and RFLAGS from the CPU's frame.
    private func reportException() -> Bool {
        guard let registers = try? machine.vcpu.registers(), let special = try? machine.vcpu.specialRegisters(),
            let frame = ExceptionEntry.frame(
                stackPointer: registers.rsp, codeSegment: special.cs, space: machine.addressSpace)
        else {
            return fault(
                .badHypercall,
                "store to \(hex(GuestLayout.trapReportAddress)), the exception entry's report address, from outside the exception entry"
            )
        }
        drainConsole()
        var faulting = registers
        (faulting.rip, faulting.rsp, faulting.rflags) = (frame.rip, frame.rsp, frame.rflags)
        let rights = machine.hasProtectionKeys ? try? machine.vcpu.protectionKeyRights() : nil
        let exception = CPUException(
            vector: frame.vector, errorCode: frame.errorCode, protectionKeyRights: rights,
            fromUserMode: frame.fromUserMode)
        control.finish(
            fault: RunControl.PendingFault(
                machine: machine.layout.index, registers: faulting, specialRegisters: special,
                kind: nil, summary: nil, exception: exception))
        return false
    }

    /// Ends the run with a report of `kind` at the vCPU's current state.
    private func fault(_ kind: FaultReport.Kind, _ summary: String) -> Bool {
        drainConsole()
        control.finish(fault: pendingFault(kind: kind, summary: summary))
        return false
    }

    /// The vCPU's registers now: what the fault report is made from, later, elsewhere.
    private func pendingFault(kind: FaultReport.Kind? = nil, summary: String? = nil) -> RunControl.PendingFault {
        RunControl.PendingFault(
            machine: machine.layout.index, registers: (try? machine.vcpu.registers()) ?? kvm_regs(),
            specialRegisters: (try? machine.vcpu.specialRegisters()) ?? kvm_sregs(), kind: kind, summary: summary)
    }

    /// The report of `fault`, which this VM's vCPU thread recorded (called after it ended).
    func analyze(_ fault: RunControl.PendingFault) -> FaultReport {
        var report = analyzer().analyze(
            registers: fault.registers, specialRegisters: fault.specialRegisters, exception: fault.exception)
        if let kind = fault.kind { report.kind = kind }
        if let summary = fault.summary { report.summary = summary }
        return report
    }

    /// Names the code a panic was about (called after the vCPU thread ended).
    func describeCode(at address: UInt64) -> String? { analyzer().describeCode(at: address) }

    /// Prints what the guest left in its ring without flushing (a crash mid-line).
    private func drainConsole() { _ = handler.flushConsole() }

    func report() -> CompartmentReport {
        let counters = self.counters.withLock { $0 }
        let kvm = (machine.statistics?.read() ?? [:]).filter { $0.value > 0 }
        // Halted in the kernel, a vCPU is woken by KVM, which counts it (halt_wakeup), not by flexosd.
        let memory = machine.memory
        return CompartmentReport(
            name: machine.layout.name, exits: counters.exits, hypercalls: counters.hypercalls, kvmStatistics: kvm,
            consoleBytes: counters.consoleBytes,
            notification: (memory.doorbells ? "doorbells" : "wake hypercalls")
                + (memory.sleepsInKernel ? ", sleeping in the kernel" : ""),
            woken: counters.woken + (memory.sleepsInKernel ? kvm["halt_wakeup", default: 0] : 0))
    }
}
