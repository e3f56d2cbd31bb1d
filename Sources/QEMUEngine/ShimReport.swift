import GuestMachine

/// What the shim said on the control port when the run ended (flexos_abi.h, "The QEMU
/// engine"): `exit CODE`, `panic LINE FILE-LENGTH MESSAGE-LENGTH` then the bytes,
/// `fault VECTOR ERROR RIP RSP RFLAGS CR2 PKRU CS RAX ... R15` then optionally
/// `stack ADDRESS LENGTH` and the bytes, or `bad WHY`. Numbers are hexadecimal.
enum ShimReport {
    case exited(code: Int64)
    case panicked(message: String, file: String, line: UInt64)
    case faulted(Fault)
    case badHypercall(String)
    /// Nothing, or nothing this engine understands.
    case none(String)

    struct Fault {
        let vector: UInt64, error: UInt64, rip: UInt64, rsp: UInt64, rflags: UInt64, cr2: UInt64, pkru: UInt64,
            cs: UInt64
        /// rax, rbx, rcx, rdx, rsi, rdi, rbp, r8 ... r15.
        let registers: [UInt64]
        /// The faulting stack, from its address.
        let stack: (address: UInt64, bytes: [UInt8])?
    }

    /// Parses the control port's bytes; anything malformed is `.none` with what was there.
    init(_ bytes: [UInt8]) {
        var reader = Reader(bytes: bytes)
        guard let line = reader.line() else {
            self = .none("")
            return
        }
        let words = line.split(separator: " ").map(String.init)
        let numbers = words.dropFirst().map { UInt64($0.dropFirst(2), radix: 16) }
        switch words.first {
        case "exit" where numbers.count == 1 && numbers[0] != nil:
            self = .exited(code: Int64(bitPattern: numbers[0]!))
        case "panic" where numbers.count == 3 && !numbers.contains(nil):
            let file = reader.take(Int(min(numbers[1]!, 4096)))
            let message = reader.take(Int(min(numbers[2]!, 4096)))
            self = .panicked(
                message: String(decoding: message, as: UTF8.self), file: String(decoding: file, as: UTF8.self),
                line: numbers[0]!)
        case "fault" where numbers.count == 23 && !numbers.contains(nil):
            let values = numbers.map { $0! }
            var stack: (UInt64, [UInt8])? = nil
            if let next = reader.line(), next.hasPrefix("stack ") {
                let parts = next.split(separator: " ").dropFirst().map { UInt64($0.dropFirst(2), radix: 16) }
                if parts.count == 2, let address = parts[0], let length = parts[1], length <= 65536 {
                    stack = (address, reader.take(Int(length)))
                }
            }
            self = .faulted(
                Fault(
                    vector: values[0], error: values[1], rip: values[2], rsp: values[3], rflags: values[4],
                    cr2: values[5],
                    pkru: values[6], cs: values[7], registers: Array(values[8...]), stack: stack))
        case "bad":
            self = .badHypercall(String(line.dropFirst(4)))
        default:
            self = .none(String(line.prefix(200)))
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        mutating func line() -> String? {
            guard position < bytes.count else { return nil }
            let end = bytes[position...].firstIndex(of: 10) ?? bytes.count
            defer { position = min(end + 1, bytes.count) }
            return String(decoding: bytes[position..<end], as: UTF8.self)
        }

        mutating func take(_ count: Int) -> [UInt8] {
            let end = min(position + count, bytes.count)
            defer { position = end }
            return Array(bytes[position..<end])
        }
    }
}
