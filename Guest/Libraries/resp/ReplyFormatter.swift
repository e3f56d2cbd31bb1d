/// The protocol a connection speaks: RESP2 until HELLO 3 asks for RESP3 (HELLO 2 and RESET
/// go back).
enum ProtocolVersion: Equatable {
    case resp2, resp3

    var number: Int { self == .resp2 ? 2 : 3 }

    /// A null bulk string and a null array as this protocol writes them (RESP3 has one null).
    var nullBulk: StaticString { self == .resp3 ? "_\r\n" : "$-1\r\n" }
    var nullArray: StaticString { self == .resp3 ? "_\r\n" : "*-1\r\n" }
}

/// Turns the application's reply records into RESP2 or RESP3. A record is a kind byte and
/// its payload (integers little-endian, 8 bytes):
///   `+` simple string, `-` error: length, bytes      `:` integer: value
///   `$` bulk string: length, bytes                    `_` null
///   `*` array: element count (-1: null array)         `%` map: pair count
///   `~` set: member count                             `P` pairs: pair count
///   `,` double: length, its text                      `=` verbatim text: length, bytes
/// RESP2 has no maps, sets, doubles, verbatim strings or typed nulls: they become flat
/// arrays, bulk strings and RESP2's nulls, as Redis writes them. Pairs (WITHSCORES replies)
/// are one flat array in RESP2 and an array of two-element arrays in RESP3; each pair is
/// two plain records. The records come from another library, so lengths and counts are
/// checked; a malformed reply becomes an error reply. Lines (simple strings, errors,
/// doubles) lose any CR or LF, which would break the protocol.
enum ReplyFormatter {
    static func format(
        _ records: UnsafeBufferPointer<UInt8>, for version: ProtocolVersion, into output: inout SharedBuffer
    ) -> Bool {
        var position = 0
        func word() -> Int? {
            guard position + 8 <= records.count, let base = records.baseAddress else { return nil }
            let value = UnsafeRawPointer(base + position).loadUnaligned(as: Int64.self)
            position += 8
            return Int(value)
        }
        /// The next `length` bytes, when the records hold them.
        func payload() -> UnsafeBufferPointer<UInt8>? {
            guard let length = word(), length >= 0, length <= records.count - position else { return nil }
            defer { position += length }
            return UnsafeBufferPointer(rebasing: records[position..<(position + length)])
        }
        let resp3 = version == .resp3
        // RESP3 pairs: records still to come in them; each pair gets its `*2` header.
        var pairRecords = 0
        while position < records.count {
            let kind = records[position]
            position += 1
            if pairRecords > 0 {
                guard !isAggregate(kind) else { return false }
                if pairRecords % 2 == 0 { output.append("*2\r\n") }
                pairRecords -= 1
            }
            switch kind {
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard let text = payload() else { return false }
                line(kind, text, into: &output)
            case UInt8(ascii: ","):
                guard let text = payload() else { return false }
                resp3 ? line(kind, text, into: &output) : blob(text, into: &output)
            case UInt8(ascii: "$"):
                guard let bytes = payload() else { return false }
                blob(bytes, into: &output)
            case UInt8(ascii: "="):
                guard let text = payload() else { return false }
                blob(text, verbatim: resp3, into: &output)
            case UInt8(ascii: ":"):
                guard let value = word() else { return false }
                header(kind, value, into: &output)
            case UInt8(ascii: "*"):
                guard let count = word(), count >= -1 else { return false }
                if count == -1 {
                    output.append(version.nullArray)
                } else {
                    header(kind, count, into: &output)
                }
            case UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: "P"):
                guard let count = word(), count >= 0, count <= Int.max / 2 else { return false }
                if kind == UInt8(ascii: "P") {
                    header(UInt8(ascii: "*"), resp3 ? count : 2 * count, into: &output)
                    if resp3 { pairRecords = 2 * count }
                } else if resp3 {
                    header(kind, count, into: &output)
                } else {
                    header(UInt8(ascii: "*"), kind == UInt8(ascii: "%") ? 2 * count : count, into: &output)
                }
            case UInt8(ascii: "_"):
                output.append(version.nullBulk)
            default:
                return false
            }
        }
        return pairRecords == 0
    }

    /// Kinds whose elements follow them: none may stand where a pair's member or value does.
    private static func isAggregate(_ kind: UInt8) -> Bool {
        kind == UInt8(ascii: "*") || kind == UInt8(ascii: "%") || kind == UInt8(ascii: "~") || kind == UInt8(ascii: "P")
    }

    private static func header(_ kind: UInt8, _ value: Int, into output: inout SharedBuffer) {
        output.append(kind)
        output.append(decimal: value)
        output.appendCRLF()
    }

    /// A one-line reply: CR and LF become spaces.
    private static func line(_ kind: UInt8, _ text: UnsafeBufferPointer<UInt8>, into output: inout SharedBuffer) {
        output.append(kind)
        for byte in text { output.append(byte == 13 || byte == 10 ? 32 : byte) }
        output.appendCRLF()
    }

    /// A bulk string, or with `verbatim` RESP3's verbatim text (`=`, length, `txt:`).
    private static func blob(_ bytes: UnsafeBufferPointer<UInt8>, verbatim: Bool = false, into output: inout SharedBuffer) {
        let length = bytes.count + (verbatim ? 4 : 0)
        // The whole reply or none of it: a header without its body would leave the client
        // reading the next reply as this one's bytes.
        guard output.makeRoom(for: length + 32) else {
            output.append(tooLarge)
            return
        }
        header(verbatim ? UInt8(ascii: "=") : UInt8(ascii: "$"), length, into: &output)
        if verbatim { output.append("txt:") }
        output.append(bytes)
        output.appendCRLF()
    }

    static let tooLarge: StaticString = "-OOM the reply does not fit the shared heap between the store and the network\r\n"
}
