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
