import CFlexOSABI
import Glibc
import GuestImage
import KVM

/// The hypercalls of `flexos_abi.h` that every VM may make; a device's own (net_kick) are
/// the device's (`Device.hypercalls`), open only to the VM that holds it.
public enum Hypercall: CaseIterable, Sendable {
    case consoleFlush, exit, panic, time, wait, wake

    /// Its number, as `flexos_abi.h` (which the guest compiles against too) defines it.
    public var number: UInt64 {
        let number =
            switch self {
            case .consoleFlush: FLEXOS_HYPERCALL_CONSOLE_FLUSH
            case .exit: FLEXOS_HYPERCALL_EXIT
            case .panic: FLEXOS_HYPERCALL_PANIC
            case .time: FLEXOS_HYPERCALL_TIME
            case .wait: FLEXOS_HYPERCALL_WAIT
            case .wake: FLEXOS_HYPERCALL_WAKE
            }
        return UInt64(number.rawValue)
    }

    public init?(number: UInt64) {
        guard let hypercall = Self.allCases.first(where: { $0.number == number }) else { return nil }
        self = hypercall
    }

    public var name: String {
        switch self {
        case .consoleFlush: return "console_flush"
        case .exit: return "exit"
        case .panic: return "panic"
        case .time: return "time"
        case .wait: return "wait"
        case .wake: return "wake"
        }
    }

    /// The hypercall number a store to guest-physical `address` makes, if it is in the
    /// hypercall window: one 8-byte slot per number.
    package static func number(at address: UInt64) -> UInt64? {
        guard address >= GuestLayout.hypercallWindow else { return nil }
        let offset = address - GuestLayout.hypercallWindow
        guard offset % 8 == 0 else { return nil }
        return offset / 8
    }

    /// The hypercall a store to guest-physical `address` makes, if it is one of these.
    package static func decode(address: UInt64) -> Hypercall? { number(at: address).flatMap(Hypercall.init(number:)) }
}

/// What the vCPU loop does after a hypercall.
package enum HypercallAction: Equatable {
    case resume
    case exit(code: Int64)
    /// `codeAddress`: the guest code the panic is about (a conflicting access, an allocation site).
    case panic(message: String, file: String?, line: Int?, codeAddress: UInt64? = nil)
    /// Block until woken or `timeout` (nanoseconds, nil = none), then write 1 or 0 to `woken`.
    case wait(timeout: UInt64?, woken: UInt64)
    case wake(compartment: Int)
    /// The guest broke the ABI: it ends with this report.
    case invalid(String)
}

/// Decodes and carries out one hypercall of one compartment.
///
/// Each argument block is copied out once, checked, then acted on (Solo5's habit): a bad
/// guest pointer ends the guest with a report and never reaches host memory.
package struct HypercallHandler {
    let space: GuestAddressSpace
    let console: ConsoleRing
    let compartmentCount: Int
    /// The devices this VM holds: only it may make their hypercalls.
    let devices: [any Device]
    /// Where console output goes.
    let output: ([UInt8]) -> Void

    package init(
        space: GuestAddressSpace, console: ConsoleRing, compartmentCount: Int, devices: [any Device] = [],
        output: @escaping ([UInt8]) -> Void
    ) {
        self.space = space
        self.console = console
        self.compartmentCount = compartmentCount
        self.devices = devices
        self.output = output
    }

    package func handle(_ call: Hypercall, argument: UInt64) -> HypercallAction {
        do {
            switch call {
            case .consoleFlush:
                return flushConsole()
            case .exit:
                return .exit(code: try space.read(flexos_hc_exit.self, at: argument).code)
            case .panic:
                return try panic(space.read(flexos_hc_panic.self, at: argument))
            case .time:
                try space.write(
                    flexos_hc_time(nanoseconds: monotonicNanoseconds(), unix_nanoseconds: unixNanoseconds()),
                    at: argument)
                return .resume
            case .wait:
                let request = try space.read(flexos_hc_wait.self, at: argument)
                let woken = argument + UInt64(MemoryLayout<flexos_hc_wait>.offset(of: \.woken)!)
                _ = try space.pointer(woken, length: 8, writable: true)
                return .wait(
                    timeout: request.timeout_nanoseconds == 0 ? nil : request.timeout_nanoseconds, woken: woken)
            case .wake:
                let target = Int(try space.read(flexos_hc_wake.self, at: argument).compartment)
                guard target < compartmentCount else {
                    return .invalid("wake of compartment \(target), but the image set has \(compartmentCount)")
                }
                return .wake(compartment: target)
            }
        } catch {
            return .invalid("\(call.name) hypercall with a bad argument: \(error)")
        }
    }

    /// A hypercall of a device this VM holds: the device's name for it, and the device.
    package func device(owning number: UInt64) -> (name: String, device: any Device)? {
        for device in devices { if let name = device.hypercalls[number] { return (name, device) } }
        return nil
    }

    /// Hands `number` to `device`, which owns it.
    package func handle(_ number: UInt64, of device: any Device, argument: UInt64) -> HypercallAction {
        switch device.handle(hypercall: number, argument: argument, space: space) {
        case .resume: return .resume
        case .invalid(let message): return .invalid("\(device.kind.description): \(message)")
        }
    }

    /// Copies out whatever the guest has appended to its console ring.
    package func flushConsole() -> HypercallAction {
        guard let bytes = console.drain() else {
            return .invalid("the console ring is corrupt (head and tail disagree)")
        }
        if !bytes.isEmpty { output(bytes) }
        return .resume
    }

    private func panic(_ request: flexos_hc_panic) throws(GuestAccessError) -> HypercallAction {
        let limit: UInt64 = 4096
        let message = String(
            decoding: try space.bytes(at: request.message, length: min(request.message_length, limit)), as: UTF8.self)
        let file =
            request.file == 0
            ? nil
            : String(
                decoding: try space.bytes(at: request.file, length: min(request.file_length, limit)), as: UTF8.self)
        // The line is the guest's word: a value no source file has is dropped, never trapped on.
        let line = request.line == 0 ? nil : Int(exactly: request.line)
        return .panic(
            message: message, file: file, line: line,
            codeAddress: request.code_address == 0 ? nil : request.code_address)
    }
}
