import FlexOS

/// movabs $0x4141..., %r12 (and 0x42.. %r13, 0x43.. %r14, 0x44.. %r15); ret. Machine code,
/// since Swift's own code keeps these registers for its caller.
@section(".text.mpkhostilelib_code") @used
nonisolated(unsafe) var clobberCode: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
    0x49, 0xBC, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x49, 0xBD,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x49, 0xBE, 0x43, 0x43,
    0x43, 0x43, 0x43, 0x43, 0x43, 0x43, 0x49, 0xBF, 0x44, 0x44, 0x44, 0x44,
    0x44, 0x44, 0x44, 0x44, 0xC3)

/// xor %eax, %eax; xor %ecx, %ecx; xor %edx, %edx; jmp *%rdi: lands at RDI with the
/// registers WRPKRU reads set to open every key.
@section(".text.mpkhostilelib_code") @used
nonisolated(unsafe) var jumpCode: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x31, 0xC0, 0x31, 0xC9, 0x31, 0xD2, 0xFF, 0xE7)

/// Symbols of the image whose addresses the attack needs (declared as functions only to
/// take their addresses).
@_extern(c, "$e6FlexOS12SharedMemoryO9stackUsedSuvpZ") func runtimeDataSymbol()  // SharedMemory.stackUsed, in .bss.runtime
@_extern(c, "__stack_chk_guard") func stackGuardSymbol()
@_extern(c, "flexos_mpk_gate_0_0") func aGate()
@_extern(c, "flexos_mpk_sp_0") func callersSavedStack()

@_cdecl("mpkhostilelib_clobber_registers")
public func clobberRegisters() {
    let code = withUnsafeMutablePointer(to: &clobberCode) { UnsafeRawPointer($0) }
    unsafeBitCast(code, to: (@convention(c) () -> Void).self)()
}

/// Every word of the page of the runtime's writable data (key 0, which every compartment's
/// PKRU opens) set to an address in the shared heap: where a forged pointer would send the
/// caller's next allocation.
@_cdecl("mpkhostilelib_overwrite_runtime_data")
public func overwriteRuntimeData() {
    let symbol = UInt(bitPattern: unsafeBitCast(runtimeDataSymbol as @convention(c) () -> Void, to: UnsafeRawPointer.self))
    let forged = UInt64(UInt(bitPattern: SharedMemory.allocate(UInt8.self, count: 4096)))
    let page = UnsafeMutablePointer<UInt64>(bitPattern: symbol & ~4095)!
    for index in 0..<512 { page[index] = forged }
    print("mpkhostilelib: overwrote the runtime's writable data")
}

/// Jumps to the WRPKRU of a gate with EAX = 0 (PKRU opening every key): the gate's check
/// must stop it before anything runs with those rights.
@_cdecl("mpkhostilelib_jump_into_gate")
public func jumpIntoGate() {
    let gate = UnsafePointer<UInt8>(bitPattern: UInt(bitPattern: unsafeBitCast(aGate as @convention(c) () -> Void, to: UnsafeRawPointer.self)))!
    var offset = 0
    while !(gate[offset] == 0x0F && gate[offset + 1] == 0x01 && gate[offset + 2] == 0xEF) { offset += 1 }
    print("mpkhostilelib: jumping to the gate's WRPKRU at offset \(offset) with every key open")
    let code = withUnsafeMutablePointer(to: &jumpCode) { UnsafeRawPointer($0) }
    unsafeBitCast(code, to: (@convention(c) (UnsafeRawPointer) -> Void).self)(gate + offset)
}

/// Points the caller's saved stack pointer (in the caller's keyed data) at memory of its
/// choosing, so that the caller would resume on a forged stack: its key must refuse the write.
@_cdecl("mpkhostilelib_forge_saved_stack")
public func forgeSavedStack() {
    let word = UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: unsafeBitCast(callersSavedStack as @convention(c) () -> Void, to: UnsafeRawPointer.self)))!
    print("mpkhostilelib: forging the caller's saved stack pointer")
    word.pointee = UInt64(UInt(bitPattern: SharedMemory.allocate(UInt8.self, count: 4096)))
    print("mpkhostilelib: the forgery went through")
}

/// Sets the stack canary to a value of its choosing (so that an overflow it feeds another
/// compartment would pass the check): the canary is read-only, so the write faults.
@_cdecl("mpkhostilelib_overwrite_canary")
public func overwriteCanary() {
    let guardWord = UnsafeMutablePointer<UInt64>(bitPattern: UInt(bitPattern: unsafeBitCast(stackGuardSymbol as @convention(c) () -> Void, to: UnsafeRawPointer.self)))!
    print("mpkhostilelib: overwriting the stack canary")
    guardWord.pointee = 0x4141_4141_4141_41FF
    print("mpkhostilelib: the canary was overwritten")
}
