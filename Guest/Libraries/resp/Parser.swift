/// RESP2 requests, parsed from untrusted bytes: `*<n>\r\n` then n times `$<len>\r\n<bytes>\r\n`
/// (what clients send), or an inline command, a line of words (`PING\r\n`, as telnet and
/// redis-benchmark's inline tests send). Every length is checked before use; an error is
/// answered with `-ERR Protocol error: ...` and the connection is closed, as Redis does.
enum Parser {
    /// A bulk string may be at most this long (Redis's proto-max-bulk-len, lowered).
    static let maximumBulkLength = 16 << 20
    static let maximumArguments = 1 << 20
    /// An inline command, or the line of a count or length, may be at most this long.
    static let maximumInlineLength = 64 << 10

    enum Outcome {
        /// A command: its arguments are in `arguments`; it took `consumed` bytes.
        case command(consumed: Int)
        /// More bytes are needed: at least `needed` in all from the start.
        case incomplete(needed: Int)
        /// An empty line or `*0`: skip `consumed` bytes.
        case skip(consumed: Int)
        case error(StaticString)
        /// `expected` was due and `got` came: Redis's "expected '$', got 'f'".
        case unexpected(expected: StaticString, got: UInt8)
    }

    /// Parses one request at the start of `input`, writing its arguments (offset, length)
    /// into `arguments`.
    static func parse(_ input: UnsafeBufferPointer<UInt8>, into arguments: inout [(Int, Int)]) -> Outcome {
        arguments.removeAll(keepingCapacity: true)
        guard let first = input.first else { return .incomplete(needed: 1) }
        return first == UInt8(ascii: "*") ? multibulk(input, &arguments) : inline(input, &arguments)
    }

    private static func multibulk(_ input: UnsafeBufferPointer<UInt8>, _ arguments: inout [(Int, Int)]) -> Outcome {
        guard let (count, afterCount) = number(in: input, at: 1) else { return lineOutcome(input, from: 1, "invalid multibulk length") }
        guard count <= maximumArguments else { return .error("invalid multibulk length") }
        if count <= 0 { return .skip(consumed: afterCount) }
        var position = afterCount
        for _ in 0..<count {
            guard position < input.count else { return .incomplete(needed: position + 1) }
            guard input[position] == UInt8(ascii: "$") else { return .unexpected(expected: "'$'", got: input[position]) }
            guard let (length, afterLength) = number(in: input, at: position + 1) else {
                return lineOutcome(input, from: position + 1, "invalid bulk length")
            }
            guard length >= 0, length <= maximumBulkLength else { return .error("invalid bulk length") }
            let end = afterLength + length
            guard end + 2 <= input.count else { return .incomplete(needed: end + 2) }
            guard input[end] == 13, input[end + 1] == 10 else { return .error("expected CRLF after a bulk string") }
            arguments.append((afterLength, length))
            position = end + 2
        }
        return .command(consumed: position)
    }

    /// An unreadable number: wrong when its line is complete (or too long), else incomplete.
    private static func lineOutcome(_ input: UnsafeBufferPointer<UInt8>, from start: Int, _ error: StaticString) -> Outcome {
        if lineEnd(in: input, from: start) != nil || input.count - start > 32 { return .error(error) }
        return .incomplete(needed: input.count + 1)
    }

    /// A decimal number at `start` ended by CRLF: the number and the position after CRLF.
    private static func number(in input: UnsafeBufferPointer<UInt8>, at start: Int) -> (Int, Int)? {
        guard let end = lineEnd(in: input, from: start), end > start, end - start <= 20 else { return nil }
        var index = start, negative = false, value = 0
        if input[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        guard index < end else { return nil }
        while index < end {
            let digit = Int(input[index]) - 48
            guard digit >= 0, digit <= 9 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            index += 1
        }
        return (negative ? -value : value, end + 2)
    }

    /// The index of the CR of the first CRLF at or after `start`.
    private static func lineEnd(in input: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        while index + 1 < input.count {
            if input[index] == 13 && input[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }

    private static func inline(_ input: UnsafeBufferPointer<UInt8>, _ arguments: inout [(Int, Int)]) -> Outcome {
        var newline = 0
        while newline < input.count && input[newline] != 10 { newline += 1 }
        guard newline < input.count else {
            return input.count > maximumInlineLength ? .error("too big inline request") : .incomplete(needed: input.count + 1)
        }
        let end = newline > 0 && input[newline - 1] == 13 ? newline - 1 : newline
        var index = 0
        while index < end {
            while index < end && (input[index] == 32 || input[index] == 9) { index += 1 }
            let start = index
            while index < end && input[index] != 32 && input[index] != 9 { index += 1 }
            if index > start { arguments.append((start, index - start)) }
        }
        return arguments.isEmpty ? .skip(consumed: newline + 1) : .command(consumed: newline + 1)
    }
}
