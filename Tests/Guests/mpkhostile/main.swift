import FlexOS

/// push %rbx; push %r12-%r15; mov %rsi, %rbx; four movabs of known values into r12-r15;
/// call *%rdi; store r12-r15 at (%rbx); pop; ret. What the caller's own code would keep in
/// those registers across the gate, written out.
@section(".text.mpkhostile_code") @used
nonisolated(unsafe) var probeCode: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (
    0x53, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x48, 0x89, 0xF3,
    0x49, 0xBC, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x49, 0xBD,
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x49, 0xBE, 0x03, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x49, 0xBF, 0x04, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x15, 0xFF, 0xD7, 0x4C, 0x89, 0x23, 0x4C, 0x89, 0x6B,
    0x08, 0x4C, 0x89, 0x73, 0x10, 0x4C, 0x89, 0x7B, 0x18, 0x41, 0x5F, 0x41,
    0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5B, 0xC3)

/// The gate from this compartment (0) to export 0, mpkhostilelib.clobber_registers:
/// declared as a top-level function to take its address.
@_extern(c, "flexos_mpk_gate_0_0") func gateToClobberRegisters()

@_cdecl("app_main")
public func appMain() -> Int32 {
    var kept: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    let probe = withUnsafeMutablePointer(to: &probeCode) { UnsafeRawPointer($0) }
    let gate = unsafeBitCast(gateToClobberRegisters as @convention(c) () -> Void, to: UnsafeRawPointer.self)
    withUnsafeMutablePointer(to: &kept) { unsafeBitCast(probe, to: (@convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void).self)(gate, $0) }
    let expected: (UInt64, UInt64, UInt64, UInt64) = (0x1200_0000_0000_0001, 0x1300_0000_0000_0002, 0x1400_0000_0000_0003, 0x1500_0000_0000_0004)
    print(kept == expected ? "mpkhostile: the gate gave back r12-r15 as they were" : "mpkhostile: r12-r15 came back changed by the callee")

    mpkhostilelib.overwrite_runtime_data()
    let secret = [UInt8](repeating: 0x53, count: 100)
    let shared = secret.withUnsafeBytes { SharedMemory.holds($0.baseAddress!, count: $0.count) }
    print(shared ? "mpkhostile: a private array came from shared memory" : "mpkhostile: a private array came from its own heap")
    return shared || kept != expected ? 1 : 0
}
