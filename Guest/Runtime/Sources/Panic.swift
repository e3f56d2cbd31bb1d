/// Ends the image set with `message`; the monitor reports it with `file`:`line`.
public func panic(_ message: StaticString, file: StaticString = #fileID, line: UInt = #line) -> Never {
    Console.flush()
    message.withUTF8Buffer { text in
        file.withUTF8Buffer { path in
            Hypercalls.panic(message: UnsafeRawBufferPointer(text), file: UnsafeRawBufferPointer(path), line: line)
        }
    }
}

/// Ends the image set with a message built at run time.
public func panic(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    Console.flush()
    var message = message
    return message.withUTF8 { text in
        file.withUTF8Buffer { path in
            Hypercalls.panic(message: UnsafeRawBufferPointer(text), file: UnsafeRawBufferPointer(path), line: line)
        }
    }
}

/// A panic message built without the heap: a heap check fails with the heap's lock held,
/// where a String would allocate and wait for that lock forever.
struct PanicText {
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    private var count = 0

    init(_ text: StaticString) { append(text) }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { append(byte: byte) } }
    }

    mutating func append(hex value: UInt) {
        append("0x")
        var shift = 60, started = false
        while shift >= 0 {
            let digit = UInt8((value >> UInt(shift)) & 15)
            if digit != 0 || started || shift == 0 {
                append(byte: digit < 10 ? 48 + digit : 87 + digit)
                started = true
            }
            shift -= 4
        }
    }

    mutating func append(decimal value: UInt) {
        if value >= 10 { append(decimal: value / 10) }
        append(byte: 48 + UInt8(value % 10))
    }

    private mutating func append(byte: UInt8) {
        guard count < MemoryLayout.size(ofValue: storage) else { return }
        withUnsafeMutableBytes(of: &storage) { $0[count] = byte }
        count += 1
    }

    /// Ends the image set with this message, about the code at `codeAddress` (which the
    /// monitor names by file and line; 0 when there is none).
    func panic(codeAddress: UInt = 0, file: StaticString = #fileID, line: UInt = #line) -> Never {
        Console.flush()
        var copy = storage
        let length = count
        return withUnsafeBytes(of: &copy) { bytes in
            file.withUTF8Buffer { path in
                Hypercalls.panic(message: UnsafeRawBufferPointer(rebasing: bytes[0..<length]), file: UnsafeRawBufferPointer(path), line: line, codeAddress: codeAddress)
            }
        }
    }
}
