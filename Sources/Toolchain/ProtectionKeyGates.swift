import Foundation
import GuestImage

/// The gates of an intel-mpk image set, as assembly generated per conformation: one per
/// (calling compartment, export), so that both PKRU values are immediates.
///
/// A gate saves what the caller keeps across a call (RBX, RBP, R12-R15, MXCSR and the x87
/// control word) on the caller's own stack, and its stack pointer in the caller's own keyed
/// data, so a callee can neither forge where its caller resumes nor hand it registers of
/// its choosing; it clears those registers before the call, so the callee learns nothing of
/// the caller from them, and clears the direction flag after it. It writes the callee's PKRU
/// and checks the value it wrote (ERIM: a jump into the middle of a gate cannot open
/// another key), switches to the callee's stack, calls the export, then does the same back.
/// WRPKRU clobbers EAX, ECX and EDX, so the third and fourth arguments travel in R10 and
/// R11. PKRU itself says which compartment runs (the runtime reads it: whose heap to use,
/// which gate a callback takes); no word of data a compartment could write says it.
struct ProtectionKeyGates: GateScheme {
    let plan: BuildPlan

    /// The output section the gates live in: the build's WRPKRU scan skips exactly it.
    static let section = ".text.mpkgates.runtime"

    static func gateSymbol(caller: Int, export: BuildPlan.Export) -> String {
        "flexos_mpk_gate_\(caller)_\(export.index)"
    }

    /// A library calls the gate of its own compartment, which switches to the callee's key.
    func gateSymbol(caller: Int, export: BuildPlan.Export) -> String {
        ProtectionKeyGates.gateSymbol(caller: caller, export: export)
    }

    /// Under intel-mpk a callback goes through the gate from the running compartment, so
    /// that it runs with its own key.
    func dispatch(parameters: String, arguments: [String]) -> String {
        var text = ""
        var cases = ""
        for caller in activeCompartments {
            for export in plan.exports {
                let symbol = ProtectionKeyGates.gateSymbol(caller: caller, export: export)
                text += "@_extern(c, \"\(symbol)\")\nfunc \(symbol)(\(parameters)) -> UInt64\n\n"
                cases +=
                    "    case (\(caller), \(export.index)): return \(symbol)(\(arguments.joined(separator: ", ")))\n"
            }
        }
        text +=
            "@_cdecl(\"flexos_dispatch\")\npublic func flexosDispatch(_ index: UInt32, \(parameters)) -> UInt64 {\n    switch (Compartment.current, index) {\n"
        return text + cases
            + "    default: panic(\"a gate call named an export this image set does not have\")\n    }\n}\n\n"
    }

    /// The gates in one object, and each compartment's stack word in its first library's.
    func buildObjects(
        with builder: ImageBuilder, into linked: inout [String: [String]], generated: String, objects: String
    )
        throws(ToolchainError) -> [String]
    {
        try write(assembly(), to: generated + "/mpk-gates.S")
        try builder.assemble(generated + "/mpk-gates.S", to: objects + "/mpk-gates.o")
        for compartment in activeCompartments {
            guard let first = plan.libraries.first(where: { plan.compartmentIndex(of: $0) == compartment }) else {
                continue
            }
            let name = "mpk-sp-\(compartment)"
            try write(stackWordAssembly(compartment), to: generated + "/\(name).S")
            try builder.assemble(generated + "/\(name).S", to: objects + "/\(name).o")
            linked[first.name, default: []].append(name + ".o")
        }
        return ["mpk-gates.o"]
    }

    /// Refuses an image that could write PKRU outside its gates, and removes it, so that no
    /// image is left to run by mistake.
    func check(image path: String) throws(ToolchainError) {
        let image: ELFImage
        do { image = try ELFImage(path: path) } catch { throw ToolchainError.image(error) }
        let gates = image.allocatedSections.filter { $0.name == ProtectionKeyGates.section }.map {
            $0.address..<($0.address + $0.size)
        }
        let findings = ProtectionKeyScan.scan(image, owners: plan.libraries.map(\.name), gates: gates)
        guard let first = findings.first else { return }
        try? FileManager.default.removeItem(atPath: path)
        throw ToolchainError.protectionKeyInstruction(
            library: first.owner, section: first.section, offset: first.offset,
            address: first.address, instruction: first.instruction, more: findings.count - 1)
    }
    static func stackWord(_ compartment: Int) -> String { "flexos_mpk_sp_\(compartment)" }

    /// What the caller keeps across a call (System V ABI), saved by the gate in this order.
    static let calleeSaved = ["rbx", "rbp", "r12", "r13", "r14", "r15"]

    /// The compartments that hold libraries (only they run code), by conformation index.
    var activeCompartments: [Int] {
        plan.conformation.compartments.indices.filter { index in
            plan.libraries.contains { plan.compartmentIndex(of: $0) == index }
        }
    }

    /// PKRU of compartment `index`, whose key is 1 + index.
    static func pkru(_ index: Int) -> UInt32 { GuestLayout.protectionKeyRights(allowing: UInt8(index + 1)) }

    /// Every gate, in one assembly file.
    func assembly() -> String {
        var text = "/* Generated by `flexosctl build` for image set \(plan.name) (intel-mpk). Do not edit. */\n"
        text += "    .section .text, \"ax\"\n"
        for caller in activeCompartments {
            for export in plan.exports {
                let callee = plan.compartmentIndex(of: export.library)
                text +=
                    caller == callee
                    ? sameCompartment(caller: caller, export: export)
                    : crossing(caller: caller, callee: callee, export: export)
            }
        }
        // Where a gate's PKRU check fails: a jump into the middle of a gate. Sized, so that a
        // fault report names it.
        text +=
            header(GuestLayout.protectionKeyGateAbortSymbol) + "    ud2\n"
            + footer(GuestLayout.protectionKeyGateAbortSymbol)
        return text
    }

    private func header(_ symbol: String) -> String {
        "\n    .globl \(symbol)\n    .type \(symbol), @function\n\(symbol):\n"
    }

    /// Sizes let the symbolizer name an address inside a gate (fault reports say which gate).
    private func footer(_ symbol: String) -> String { "    .size \(symbol), . - \(symbol)\n" }

    /// A call within a compartment needs no switch.
    private func sameCompartment(caller: Int, export: BuildPlan.Export) -> String {
        let symbol = ProtectionKeyGates.gateSymbol(caller: caller, export: export)
        return header(symbol) + "    jmp \(export.symbol)\n" + footer(symbol)
    }

    private func crossing(caller: Int, callee: Int, export: BuildPlan.Export) -> String {
        let callerWord = ProtectionKeyGates.stackWord(caller)
        let calleeWord = ProtectionKeyGates.stackWord(callee)
        func switchKeys(to index: Int) -> String {
            let value = String(ProtectionKeyGates.pkru(index), radix: 16)
            return
                "    mov $0x\(value), %eax\n    xor %ecx, %ecx\n    xor %edx, %edx\n    wrpkru\n    cmp $0x\(value), %eax\n    jne \(GuestLayout.protectionKeyGateAbortSymbol)\n"
        }
        let saved = ProtectionKeyGates.calleeSaved
        var text = header(ProtectionKeyGates.gateSymbol(caller: caller, export: export))
        text += saved.map { "    push %\($0)\n" }.joined()
        // 16 bytes for MXCSR and the x87 control word keep the saved stack pointer 16-aligned.
        text += "    sub $16, %rsp\n    stmxcsr (%rsp)\n    fnstcw 4(%rsp)\n    mov %rdx, %r10\n    mov %rcx, %r11\n"
        text += "    mov \(callerWord)(%rip), %rbx\n    push %rbx\n    mov %rsp, \(callerWord)(%rip)\n"
        text += switchKeys(to: callee)
        text += "    mov \(calleeWord)(%rip), %rsp\n"
        text += saved.map { "    xor %\($0), %\($0)\n" }.joined()
        text += "    mov %r10, %rdx\n    mov %r11, %rcx\n    call \(export.symbol)\n    mov %rax, %r10\n"
        text += switchKeys(to: caller)
        text += "    mov \(callerWord)(%rip), %rsp\n    pop %rbx\n    mov %rbx, \(callerWord)(%rip)\n"
        text += "    ldmxcsr (%rsp)\n    fldcw 4(%rsp)\n    add $16, %rsp\n    cld\n    mov %r10, %rax\n"
        text += saved.reversed().map { "    pop %\($0)\n" }.joined() + "    ret\n"
        return text + footer(ProtectionKeyGates.gateSymbol(caller: caller, export: export))
    }

    /// Compartment `index`'s saved stack pointer, linked into its own keyed data: where the
    /// next call into it starts (the top of its stack until it calls out).
    func stackWordAssembly(_ index: Int) -> String {
        let top = GuestLayout.stack(ofCompartment: index, stride: Mechanism.intelMPK.isolation.areaStride).upperBound
        let symbol = ProtectionKeyGates.stackWord(index)
        return
            "/* Generated by `flexosctl build`. Do not edit. */\n    .section .data, \"aw\"\n    .p2align 3\n    .globl \(symbol)\n\(symbol):\n    .quad 0x\(String(top, radix: 16))\n"
    }
}
