import CFlexOSGuest
import FlexOS

/// Raises the panic hypercall by hand, with a line of 2^63: the monitor must report the
/// panic, not trap on converting the line.
@_cdecl("app_main")
public func appMain() -> Int32 {
    let message: StaticString = "hostile panic"
    let file: StaticString = "hostile.swift"
    var block = flexos_hc_panic(
        message: UInt64(UInt(bitPattern: message.utf8Start)), message_length: UInt64(message.utf8CodeUnitCount),
        file: UInt64(UInt(bitPattern: file.utf8Start)), file_length: UInt64(file.utf8CodeUnitCount), line: 1 << 63, code_address: 0)
    flexos_hypercall(UInt64(FLEXOS_HYPERCALL_PANIC.rawValue), &block)
    return 0
}
