/// Turns the application's reply records into RESP2. A record is a kind byte and its
/// payload (integers little-endian, 8 bytes):
///   `+` simple string, `-` error: length, bytes      `:` integer: value
///   `$` bulk string: length, bytes                    `_` null bulk string
///   `*` array: element count (-1: null array)
/// The records come from another library, so lengths are checked against the buffer;
/// a malformed reply becomes an error reply. Simple strings and errors lose any CR or LF,
/// which would break the protocol.
enum ReplyFormatter {
    static func format(_ records: UnsafeBufferPointer<UInt8>, into output: inout SharedBuffer) -> Bool {
        var position = 0
        func word() -> Int? {
            guard position + 8 <= records.count, let base = records.baseAddress else { return nil }
            let value = UnsafeRawPointer(base + position).loadUnaligned(as: Int64.self)
            position += 8
            return Int(value)
        }
        while position < records.count {
            let kind = records[position]
            position += 1
            switch kind {
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard let length = word(), length >= 0, length <= records.count - position else { return false }
                output.append(kind)
                for byte in UnsafeBufferPointer(rebasing: records[position..<(position + length)]) {
                    output.append(byte == 13 || byte == 10 ? 32 : byte)
                }
                output.appendCRLF()
                position += length
            case UInt8(ascii: "$"):
                guard let length = word(), length >= 0, length <= records.count - position else { return false }
                // The whole reply or none of it: a header without its body would leave the
                // client reading the next reply as this one's bytes.
                guard output.makeRoom(for: length + 32) else {
                    output.append(UnsafeBufferPointer(start: tooLarge.utf8Start, count: tooLarge.utf8CodeUnitCount))
                    position += length
                    continue
                }
                output.append(UInt8(ascii: "$"))
                output.append(decimal: length)
                output.appendCRLF()
                output.append(UnsafeBufferPointer(rebasing: records[position..<(position + length)]))
                output.appendCRLF()
                position += length
            case UInt8(ascii: ":"), UInt8(ascii: "*"):
                guard let value = word() else { return false }
                output.append(kind)
                output.append(decimal: value)
                output.appendCRLF()
            case UInt8(ascii: "_"):
                output.append(UnsafeBufferPointer(start: nullBulk.utf8Start, count: nullBulk.utf8CodeUnitCount))
            default:
                return false
            }
        }
        return true
    }

    static let nullBulk: StaticString = "$-1\r\n"
    static let tooLarge: StaticString = "-OOM the reply does not fit the shared heap between the store and the network\r\n"
}
