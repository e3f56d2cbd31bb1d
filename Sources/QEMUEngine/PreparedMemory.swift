import CFlexOSABI
import CKVM
import ControlProtocol
import Foundation
import GuestImage
import GuestMachine
import KVM

/// The guest memory of a QEMU run, built as for KVM, and how to read the run's end
/// against it (the same fault analysis, over the faulting stack the shim sent back).
struct PreparedMemory {
    let layout: ImageSetLayout
    let memory: CompartmentMemory
    let shared: GuestMemory
    let imageSet: ImageSet
    /// QEMU's -m: RAM up to the highest private area (QEMU puts RAM beyond 3 GiB above 4 GiB once -m is 3.5 GiB or more).
    let qemuMemory: UInt64

    struct Files {
        let staging: String, handoff: String, shared: String
        /// The control port as a file (a run the shim serves itself) and as the socket flexosd listens on.
        let control: String, controlSocket: String
    }

    init(imageSet: ImageSet, options: LaunchOptions) throws(LaunchError) {
        self.imageSet = imageSet
        layout = try ImageSetLayout(
            image: imageSet.image, manifest: imageSet.manifest, memory: options.memory,
            sharedMemory: options.sharedMemory)
        do {
            shared = try GuestMemory(name: "flexos:\(imageSet.manifest.name):qemu-shared", size: options.sharedMemory)
        } catch { throw LaunchError.kvm(error) }
        try SharedArea.initialise(shared, image: imageSet.image, layout: layout)
        let shimPages = PageMapping.ringZero(
            PreparedMemory.shimRange, PagePermissions(writable: true, executable: true))
        let handoffPage = PageMapping.ringZero(
            FLEXOS_SHIM_HANDOFF..<(FLEXOS_SHIM_HANDOFF + GuestLayout.pageSize), .readOnly)
        let callRecord = PageMapping.ringZero(
            FLEXOS_SHIM_CALL_RECORD..<(FLEXOS_SHIM_CALL_RECORD + GuestLayout.pageSize), .readWrite)
        memory = try CompartmentMemory(
            setName: imageSet.manifest.name, imageSet: layout, index: 0, image: imageSet.image, shared: shared,
            applicationCompartment: 0, enginePages: [shimPages, handoffPage, callRecord],
            hypercallMode: FLEXOS_HYPERCALL_MODE_SYSCALL)
        let highest = layout.compartments.flatMap(\.privateAreas).map(\.upperBound).max() ?? 0
        let aboveFourGiB = highest > (4 << 30) ? alignUp(highest - (4 << 30), 1 << 20) : 0
        qemuMemory = max(3584 << 20, (3072 << 20) + aboveFourGiB)
    }

    /// Writes what QEMU's loader places in guest memory; returns the files. `servedByFlexosd`:
    /// the shim forwards every hypercall to flexosd (HypercallServer) instead of serving it.
    func write(to folder: String, servedByFlexosd: Bool) throws(LaunchError) -> Files {
        let files = Files(
            staging: folder + "/low.bin", handoff: folder + "/handoff.bin", shared: folder + "/shared.bin",
            control: folder + "/control", controlSocket: folder + "/control.sock")
        let low = GuestLayout.monitorArea.lowerBound
        let sharedUsed = layout.gateBlock.upperBound - layout.sharedArea.lowerBound
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(bytes: memory.privateMemory.base + Int(low), count: Int(memory.lowSize - low)).write(
                to: URL(fileURLWithPath: files.staging))
            try Data(bytes: shared.base, count: Int(sharedUsed)).write(to: URL(fileURLWithPath: files.shared))
            var handoff = self.handoff(stagingBytes: memory.lowSize - low)
            handoff.served_by_flexosd = servedByFlexosd ? 1 : 0
            try Data(bytes: &handoff, count: MemoryLayout<flexos_shim_handoff>.size).write(
                to: URL(fileURLWithPath: files.handoff))
            try Data().write(to: URL(fileURLWithPath: files.control))
        } catch {
            throw LaunchError.cannotWrite(path: folder, reason: error.localizedDescription)
        }
        return files
    }

    private func handoff(stagingBytes: UInt64) -> flexos_shim_handoff {
        var handoff = flexos_shim_handoff()
        handoff.magic = FLEXOS_SHIM_MAGIC
        handoff.page_table_root = memory.pageTables.root
        handoff.staging_target = GuestLayout.monitorArea.lowerBound
        handoff.staging_bytes = stagingBytes
        handoff.entry = imageSet.image.entry
        handoff.stack_top = layout.compartments[0].stack.upperBound - 8
        handoff.boot_info = GuestLayout.bootInfoAddress
        handoff.tsc_hz =
            (try? memory.addressSpace.read(flexos_boot_info.self, at: GuestLayout.bootInfoAddress).tsc_hz) ?? 0
        let machine = layout.compartments[0]
        let stacks = (machine.keyed.isEmpty ? [machine.stack] : machine.keyed.map(\.stack)) + [machine.sharedStack]
        if let application = machine.keyedApplication.map({ machine.keyed[$0] }) {
            handoff.protection_keys = 1
            handoff.pkru = application.pkru
        }
        handoff.stack_count = UInt64(stacks.count)
        withUnsafeMutableBytes(of: &handoff.stacks) { words in
            for (index, stack) in stacks.prefix(Int(FLEXOS_MAX_COMPARTMENTS)).enumerated() {
                words.storeBytes(of: stack.lowerBound, toByteOffset: 16 * index, as: UInt64.self)
                words.storeBytes(of: stack.upperBound, toByteOffset: 16 * index + 8, as: UInt64.self)
            }
        }
        return handoff
    }

    /// How the run ended, from the shim's report.
    func end(from report: ShimReport, timedOut: Double?, errors: String) -> RunEnd {
        let name = layout.compartments[0].name
        if let timedOut { return .timedOut(seconds: timedOut, locations: []) }
        switch report {
        case .exited(let code):
            return .exited(code: code, compartment: name)
        case .panicked(let message, let file, let line):
            // The line is the guest's word: one no source file has (0, or 2^63 and more) is dropped, as on KVM.
            let lineText = Int(exactly: line).flatMap { $0 > 0 ? ":\($0)" : nil } ?? ""
            return .panicked(message: message, location: file.isEmpty ? nil : file + lineText, compartment: name)
        case .faulted(let fault):
            return .faulted(analyze(fault))
        case .badHypercall(let why):
            return .failed(message: "compartment \(name) broke the hypercall ABI: \(why)")
        case .none(let text):
            let detail = errors.split(separator: "\n").suffix(5).joined(separator: "\n")
            return .failed(
                message: "QEMU ended without a report from the shim" + (text.isEmpty ? "" : " (it said: \(text))")
                    + (detail.isEmpty ? "" : ":\n" + detail))
        }
    }

    /// The one VM: regions, keys and PKRU from the layout; with `live` (the guest's memory,
    /// where flexosd shares it) its gate counters and the rights of its last hypercall.
    func snapshot(running: Bool, report: CompartmentReport, live: (space: GuestAddressSpace, pkru: UInt32?)? = nil)
        -> CompartmentSnapshot
    {
        let machine = layout.compartments[0]
        let gates =
            live.map { GateInspector(space: $0.space, gateBlock: layout.gateBlock.lowerBound).gates(of: 0) }
            ?? CompartmentSnapshot.noGates
        var snapshot = CompartmentSnapshot(
            machine: machine, manifest: imageSet.manifest, activity: running ? .running : .stopped, gates: gates,
            report: report)
        if let pkru = live?.pkru, !machine.keyed.isEmpty {
            snapshot.rightsAtLastHypercall = .init(
                pkru: hex(UInt64(pkru)), compartment: machine.keyed.first { $0.pkru == pkru }?.name)
        }
        return snapshot
    }

    /// The report of a hypercall flexosd refused (HypercallServer): a fault of kind
    /// `badHypercall` at the registers of the call, its stack walked in the live memory, as on KVM.
    func refusedHypercall(_ why: String, rip: UInt64, rsp: UInt64, rbp: UInt64, space: GuestAddressSpace) -> RunEnd {
        var registers = kvm_regs()
        (registers.rip, registers.rsp, registers.rbp) = (rip, rsp, rbp)
        var special = kvm_sregs()
        special.cr2 = VCPUState.noPageFault
        var report = analyzer(space: space).analyze(registers: registers, specialRegisters: special)
        report.kind = .badHypercall
        report.summary = why
        return .faulted(report)
    }

    private func analyzer(space: GuestAddressSpace) -> FaultAnalyzer {
        FaultAnalyzer(
            compartment: layout.compartments[0], imageSet: layout, pageTables: memory.pageTables, space: space,
            symbolizer: Symbolizer(image: imageSet.image), exports: imageSet.manifest.exports)
    }

    /// Where the shim runs (supervisor-only pages).
    static let shimRange = FLEXOS_SHIM_BASE..<(FLEXOS_SHIM_BASE + FLEXOS_SHIM_BYTES)

    /// The fault report, made as on KVM: the faulting stack goes back into this copy of the
    /// guest's memory so that the analyzer can walk its frames.
    private func analyze(_ fault: ShimReport.Fault) -> FaultReport {
        if let stack = fault.stack,
            let target = try? memory.addressSpace.physical(stack.address, length: UInt64(stack.bytes.count))
        {
            stack.bytes.withUnsafeBytes { target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        var registers = kvm_regs()
        let values = fault.registers
        (registers.rax, registers.rbx, registers.rcx, registers.rdx, registers.rsi, registers.rdi, registers.rbp) =
            (values[0], values[1], values[2], values[3], values[4], values[5], values[6])
        (
            registers.r8, registers.r9, registers.r10, registers.r11, registers.r12, registers.r13, registers.r14,
            registers.r15
        ) =
            (values[7], values[8], values[9], values[10], values[11], values[12], values[13], values[14])
        (registers.rip, registers.rsp, registers.rflags) = (fault.rip, fault.rsp, fault.rflags)
        var special = kvm_sregs()
        special.cr2 = fault.cr2  // the analyzer ignores it for anything but a page fault
        let analyzer = analyzer(space: memory.addressSpace)
        let exception = CPUException(
            vector: fault.vector, errorCode: fault.error,
            protectionKeyRights: layout.compartments[0].keyed.isEmpty ? nil : UInt32(truncatingIfNeeded: fault.pkru))
        var report = analyzer.analyze(registers: registers, specialRegisters: special, exception: exception)
        report.notes.append("under the QEMU engine: exception vector \(fault.vector), error code \(hex(fault.error))")
        if PreparedMemory.shimRange.contains(fault.rip) {
            // Ring-0 code of the engine itself, not the guest's: say so rather than blame the image.
            report.summary =
                "a fault inside the QEMU engine's ring-0 shim (Guest/Ring0/shim.c) at \(hex(fault.rip)), offset \(hex(fault.rip - FLEXOS_SHIM_BASE)) of the shim: "
                + "a bug of the engine, or guest state the shim should have refused (" + report.summary + ")"
        }
        return report
    }
}
