import CKVM
import GuestImage

/// Turns the state of a vCPU that stopped on a fault (KVM_EXIT_SHUTDOWN) into a
/// `FaultReport`.
///
/// With no IDT the guest cannot handle exceptions, so the first one ends it. What it was
/// is recovered from the evidence: RIP not executable here means an instruction fetch
/// fault; a CR2 that changed (the monitor starts it at a non-canonical address, so 0 is a
/// real fault address) a page fault; otherwise the
/// instruction at RIP tells (UD2 is Swift's trap, privileged opcodes fault in ring 3).
package struct FaultAnalyzer {
    package let compartment: ImageSetLayout.Compartment
    package let imageSet: ImageSetLayout
    package let pageTables: PageTables
    package let space: GuestAddressSpace
    package let symbolizer: Symbolizer?
    /// The image set's exports, to name the gate calls in service here.
    package let exports: [ImageManifest.Export]

    package init(
        compartment: ImageSetLayout.Compartment, imageSet: ImageSetLayout, pageTables: PageTables,
        space: GuestAddressSpace,
        symbolizer: Symbolizer?, exports: [ImageManifest.Export]
    ) {
        self.compartment = compartment
        self.imageSet = imageSet
        self.pageTables = pageTables
        self.space = space
        self.symbolizer = symbolizer
        self.exports = exports
    }

    /// The report of a fault at `regs`; `exception` is what the CPU delivered, when the
    /// engine caught it (without it the evidence above decides).
    package func analyze(registers regs: kvm_regs, specialRegisters: kvm_sregs, exception: CPUException? = nil)
        -> FaultReport
    {
        var sregs = specialRegisters
        // CR2 is the address of the last page fault: for any other exception it is stale.
        if let exception, !exception.isPageFault { sregs.cr2 = VCPUState.noPageFault }
        var report = FaultReport(
            compartment: compartment.name, kind: .unknown, summary: "", address: nil, addressRegion: nil,
            library: imageSet.region(containing: regs.rip)?.library,
            instructionPointer: regs.rip,
            function: symbolizer.flatMap { $0.symbol(containing: regs.rip) != nil ? $0.describe(regs.rip) : nil },
            location: symbolizer?.sourceLocation(of: regs.rip)?.description,
            gate: nil, notes: [], backtrace: [], registers: FaultAnalyzer.registerFile(regs, sregs))
        if let mapping = pageTables.translate(regs.rip), mapping.permissions.executable {
            if sregs.cr2 != VCPUState.noPageFault {
                describeDataFault(at: sregs.cr2, into: &report)
            } else {
                describeInstruction(at: regs.rip, into: &report)
            }
            report.backtrace = backtrace(regs)
        } else {
            describeFetchFault(regs, into: &report)
        }
        if let exception, exception.isProtectionKeyFault, let rights = exception.protectionKeyRights {
            describeProtectionKeyFault(at: sregs.cr2, write: exception.isWrite, rights: rights, into: &report)
        }
        if let exception, !exception.fromUserMode {
            report.notes.append(
                "the exception (vector \(exception.vector)) was raised in ring 0, where no FlexOS guest code runs: after a `syscall` or `int`, or in the engine's exception entry"
            )
        }
        return report
    }

    /// A page fault with the PK bit: which compartment ran (from PKRU), whose key the page
    /// carries, and the gate the running compartment was entered through.
    private func describeProtectionKeyFault(
        at address: UInt64, write: Bool, rights: UInt32, into report: inout FaultReport
    ) {
        let members = compartment.keyed
        let running = members.first { $0.pkru == rights }
        let key = pageTables.protectionKey(of: address) ?? 0
        let owner = members.first { $0.key == key }
        let region = imageSet.region(containing: address)?.name ?? "unnamed memory"
        report.kind = .protectionKeyFault
        report.compartment = running?.name ?? report.compartment
        report.summary =
            "\(write ? "write" : "read") of \(hex(address)) (\(region), key \(key)"
            + (owner.map { " of compartment \($0.name)" } ?? "")
            + "), which the keys of compartment \(running?.name ?? "?") (PKRU \(hex(UInt64(rights)))) do not open"
        report.addressRegion = "\(region), key \(key)"
        if let (caller, export) = report.backtrace.lazy.compactMap({ self.protectionKeyGate(in: $0.function) }).first {
            report.gate = "export \(export.library).\(export.name), called from compartment \(caller)"
            if caller != running?.name {
                report.notes.append(
                    "compartment \(running?.name ?? "?") ran a gate of compartment \(caller): a call skipped its gate")
            }
        }
    }

    /// The calling compartment and the export of gate flexos_mpk_gate_CALLER_EXPORT, for a
    /// frame in one (the symbolizer writes "flexos_mpk_gate_0_1 + 0x47").
    private func protectionKeyGate(in function: String) -> (caller: String, export: ImageManifest.Export)? {
        guard function.hasPrefix("flexos_mpk_gate_") else { return nil }
        let parts =
            function.dropFirst("flexos_mpk_gate_".count).split(separator: " ").first?.split(separator: "_").compactMap {
                Int($0)
            } ?? []
        let members = compartment.keyed
        guard parts.count == 2, parts[0] < members.count, parts[1] < exports.count else { return nil }
        return (members[parts[0]].name, exports[parts[1]])
    }

    private func describeDataFault(at address: UInt64, into report: inout FaultReport) {
        let region = imageSet.region(containing: address)
        report.address = address
        report.addressRegion = region.map { describe($0) } ?? "mapped nowhere"
        report.gate = gateCarrying(address)
        if let region, region.kind == .stackGuard || region.kind == .sharedStackGuard, isOwn(region) {
            report.kind = .stackOverflow
            report.summary =
                "stack overflow in compartment \(region.compartment ?? compartment.name): \(region.name) was hit at \(hex(address))"
        } else if let region, region.kind == .heapGuard, isOwn(region) {
            report.kind = .heapOverflow
            let side =
                region.range.lowerBound
                    == imageSet.allRegions.first(where: { $0.kind == .heap && $0.compartment == region.compartment })?
                    .range.upperBound ? "after" : "before"
            report.summary =
                "heap overflow in compartment \(region.compartment ?? compartment.name): \(hex(address)) is in the guard page \(side) its heap (hardening guard-pages)"
        } else if let mapping = pageTables.translate(address), !mapping.permissions.writable {
            report.kind = .pageFault
            report.summary = "write to read-only memory at \(hex(address))"
        } else {
            report.kind = .pageFault
            report.summary = "access to \(hex(address)), which is not mapped in compartment \(compartment.name)"
        }
    }

    /// Names guest code for a report: `file:line (function)`, or nil when the image does not know the address.
    package func describeCode(at address: UInt64) -> String? {
        guard let symbolizer, symbolizer.symbol(containing: address) != nil else { return nil }
        return (symbolizer.sourceLocation(of: address).map { "\($0.description) " } ?? "")
            + "(\(symbolizer.describe(address)))"
    }

    /// Whether `region` belongs to this VM (its own, or one of the compartments it runs).
    private func isOwn(_ region: GuestRegion) -> Bool {
        region.compartment == compartment.name || compartment.members.contains(region.compartment ?? "")
    }

    private func describeInstruction(at rip: UInt64, into report: inout FaultReport) {
        let bytes = (try? space.bytes(at: rip, length: 2)) ?? (try? space.bytes(at: rip, length: 1)) ?? []
        if bytes == [0x0F, 0x0B],
            symbolizer?.symbol(containing: rip)?.symbol.name == GuestLayout.protectionKeyGateAbortSymbol
        {
            report.kind = .gateCheck
            report.summary =
                "an intel-mpk gate's PKRU check failed in compartment \(compartment.name): a jump into the middle of a gate, past the value it writes to PKRU (refused before any other key opened)"
        } else if bytes == [0x0F, 0x0B] {
            report.kind = .trap
            report.summary =
                "Swift runtime trap (a failed precondition, an overflow, an out-of-bounds access or fatalError)"
        } else if let name = PrivilegedInstruction.name(of: bytes) {
            report.kind = .privilegedInstruction
            report.summary = "privileged instruction \(name): the guest runs in ring 3, where it faults"
        } else {
            report.summary =
                "general-protection or invalid-opcode exception (e.g. a call, jump or access to a non-canonical address)"
        }
    }

    private func describeFetchFault(_ regs: kvm_regs, into report: inout FaultReport) {
        let region = imageSet.region(containing: regs.rip)
        report.kind = .instructionFetch
        report.address = regs.rip
        report.addressRegion = region.map { describe($0) } ?? "mapped nowhere"
        report.summary = "jump to \(hex(regs.rip)), which is not executable in compartment \(compartment.name)"
        // The faulting call pushed its return address and the callee never ran a prologue.
        let returnAddress = try? space.read(UInt64.self, at: regs.rsp)
        if let region, region.kind == .library, let owner = region.compartment, !compartment.members.contains(owner) {
            let caller =
                returnAddress.map { symbolizer?.describe(FaultAnalyzer.callSite(returning: $0)) ?? hex($0) }
                ?? "an unknown caller"
            report.notes.append(
                "\(caller) in compartment \(compartment.name) called \(report.function ?? hex(regs.rip)) of library \(region.library ?? "?") (compartment \(owner)) directly: a call that skipped its gate"
            )
        }
        if let returnAddress {
            report.backtrace =
                [frame(regs.rip, isReturnAddress: false)]
                + backtrace(pc: returnAddress, frame: regs.rbp, isReturnAddress: true)
        }
    }

    /// The backtrace of a fault inside code. A function stopped at its first instruction
    /// has not yet pushed a frame, so its caller is found at RSP instead of through RBP.
    private func backtrace(_ regs: kvm_regs) -> [FaultReport.Frame] {
        if symbolizer?.symbol(containing: regs.rip)?.offset == 0,
            let returnAddress = try? space.read(UInt64.self, at: regs.rsp)
        {
            return [frame(regs.rip, isReturnAddress: false)]
                + backtrace(pc: returnAddress, frame: regs.rbp, isReturnAddress: true)
        }
        return backtrace(pc: regs.rip, frame: regs.rbp)
    }

    /// "argument 3 (stackInt) of gate flexosexample.lib_func, called from compartment comp1"
    /// when `address` is (near) an argument of a gate call this VM is serving.
    private func gateCarrying(_ address: UInt64) -> String? {
        for call in GateInspector(space: space, gateBlock: imageSet.gateBlock.lowerBound).callsInService(
            callee: compartment.index, machines: imageSet.compartments.count)
        {
            guard Int(call.exportIndex) < exports.count else { continue }
            let export = exports[Int(call.exportIndex)]
            for (position, argument) in call.arguments.prefix(export.parameters.count).enumerated()
            where address >= argument && address - argument < GuestLayout.pageSize {
                return
                    "argument \(position + 1) (\(export.parameters[position])) of gate \(export.library).\(export.name), called from compartment \(imageSet.compartments[call.caller].name)"
            }
        }
        return nil
    }

    /// "the private stack of compartment comp1 (not mapped in comp2)".
    private func describe(_ region: GuestRegion) -> String {
        let mappedHere = compartment.mapped.contains { $0.range.overlaps(region.range) }
        let isGuard = region.kind == .stackGuard || region.kind == .sharedStackGuard || region.kind == .heapGuard
        return region.name + (mappedHere || isGuard ? "" : ", not mapped in compartment \(compartment.name)")
    }

    /// Frames from `pc`, then along the frame-pointer chain from `frame`.
    private func backtrace(pc: UInt64, frame: UInt64, isReturnAddress: Bool = false) -> [FaultReport.Frame] {
        var frames = [self.frame(pc, isReturnAddress: isReturnAddress)]
        var framePointer = frame
        while frames.count < 32, framePointer != 0, framePointer % 8 == 0,
            case (let slot, false) = framePointer.addingReportingOverflow(8),
            let returnAddress = try? space.read(UInt64.self, at: slot), returnAddress != 0,
            let next = try? space.read(UInt64.self, at: framePointer)
        {
            frames.append(self.frame(returnAddress, isReturnAddress: true))
            guard next > framePointer else { break }
            framePointer = next
        }
        return frames
    }

    /// A frame; a return address is symbolized at the call before it.
    private func frame(_ address: UInt64, isReturnAddress: Bool) -> FaultReport.Frame {
        let site = isReturnAddress ? FaultAnalyzer.callSite(returning: address) : address
        return FaultReport.Frame(
            address: address, function: symbolizer?.describe(site) ?? "?",
            location: symbolizer?.sourceLocation(of: site)?.description)
    }

    /// The address of the call instruction a return address follows. The guest wrote the
    /// return address, so it may be 0: that one stays 0 instead of wrapping.
    package static func callSite(returning address: UInt64) -> UInt64 { address == 0 ? 0 : address - 1 }

    package static func registerFile(_ regs: kvm_regs, _ sregs: kvm_sregs) -> [String: UInt64] {
        [
            "rip": regs.rip, "rsp": regs.rsp, "rbp": regs.rbp, "rflags": regs.rflags,
            "rax": regs.rax, "rbx": regs.rbx, "rcx": regs.rcx, "rdx": regs.rdx,
            "rsi": regs.rsi, "rdi": regs.rdi, "r8": regs.r8, "r9": regs.r9,
            "r10": regs.r10, "r11": regs.r11, "r12": regs.r12, "r13": regs.r13,
            "r14": regs.r14, "r15": regs.r15, "cr2": sregs.cr2
        ]
    }
}

/// Instructions that fault in ring 3, by their first bytes.
package enum PrivilegedInstruction {
    package static func name(of bytes: [UInt8]) -> String? {
        guard let first = bytes.first else { return nil }
        switch first {
        case 0xF4: return "hlt"
        case 0xFA: return "cli"
        case 0xFB: return "sti"
        case 0xE4, 0xE5, 0xEC, 0xED: return "in"
        case 0xE6, 0xE7, 0xEE, 0xEF: return "out"
        case 0xCF: return "iret"
        default: break
        }
        guard first == 0x0F, bytes.count > 1 else { return nil }
        switch bytes[1] {
        case 0x01: return "lgdt/lidt/invlpg (0f 01)"
        case 0x06: return "clts"
        case 0x08: return "invd"
        case 0x09: return "wbinvd"
        case 0x20, 0x22: return "mov to or from a control register"
        case 0x30: return "wrmsr"
        case 0x32: return "rdmsr"
        default: return nil
        }
    }
}
