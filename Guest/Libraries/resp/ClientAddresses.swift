import FlexOS

/// CLIENT LIST's and CLIENT INFO's addr and laddr. The network library alone knows each
/// connection's two ends (net.addresses); resp asks for the clients it lists, up to
/// `chunk` in one call, and writes them as Redis does: `127.0.0.1:6379`, `[::1]:6379`.
enum ClientAddresses {
    static let chunk = 256
    /// A flexos_net_address (flexos_abi.h): family (4 or 6), a reserved byte, the port
    /// (little-endian), 16 bytes of address.
    static let addressBytes = 20
    /// The peer's, then the local one.
    static let entryBytes = 2 * addressBytes

    /// Each client's peer and local address as text, in order; empty where net does not
    /// know them (or the shared heap has no room to ask).
    static func of(_ clients: [Client]) -> [(peer: [UInt8], local: [UInt8])] {
        var result = [(peer: [UInt8], local: [UInt8])](repeating: ([], []), count: clients.count)
        guard let requests = SharedMemory.allocate(UInt64.self, count: 4 * chunk) else { return result }
        defer { SharedMemory.deallocate(requests) }
        guard let buffers = SharedMemory.allocate(UInt8.self, count: entryBytes * chunk) else { return result }
        defer { SharedMemory.deallocate(buffers) }
        var start = 0
        while start < clients.count {
            let count = min(chunk, clients.count - start)
            for index in 0..<count {
                let words = requests + 4 * index
                words[0] = clients[start + index].id
                words[1] = UInt64(UInt(bitPattern: buffers + entryBytes * index))
                words[2] = UInt64(entryBytes)
                words[3] = 0
            }
            _ = net.addresses(requests, count)
            for index in 0..<count where requests[4 * index + 3] == UInt64(entryBytes) {
                let entry = UnsafePointer(buffers + entryBytes * index)
                result[start + index] = (text(entry), text(entry + addressBytes))
            }
            start += count
        }
        return result
    }

    /// One address as Redis writes it (an IPv6 address in brackets); empty when unknown.
    static func text(_ address: UnsafePointer<UInt8>) -> [UInt8] {
        let port = Array("\(Int(address[2]) | Int(address[3]) << 8)".utf8)
        switch address[0] {
        case 4: return dotted(address + 4) + [UInt8(ascii: ":")] + port
        case 6: return [UInt8(ascii: "[")] + ipv6(address + 4) + Array("]:".utf8) + port
        default: return []
        }
    }

    private static func dotted(_ bytes: UnsafePointer<UInt8>) -> [UInt8] {
        Array("\(bytes[0]).\(bytes[1]).\(bytes[2]).\(bytes[3])".utf8)
    }

    /// An IPv6 address as inet_ntop writes it: the longest run of two or more zero groups
    /// (the first of equals) as `::`, groups in lowercase hex, and an IPv4-mapped or
    /// -compatible address's last 32 bits dotted.
    private static func ipv6(_ bytes: UnsafePointer<UInt8>) -> [UInt8] {
        let groups = (0..<8).map { Int(bytes[2 * $0]) << 8 | Int(bytes[2 * $0 + 1]) }
        var best = (base: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index >= 2 && end - index > best.length { best = (index, end - index) }
            index = end
        }
        var text: [UInt8] = []
        for index in 0..<8 {
            if best.base >= 0 && index >= best.base && index < best.base + best.length {
                if index == best.base { text.append(UInt8(ascii: ":")) }
                continue
            }
            if index != 0 { text.append(UInt8(ascii: ":")) }
            if index == 6 && best.base == 0 && (best.length == 6 || best.length == 5 && groups[5] == 0xFFFF) {
                return text + dotted(bytes + 12)
            }
            text += hex(groups[index])
        }
        if best.base >= 0 && best.base + best.length == 8 { text.append(UInt8(ascii: ":")) }
        return text
    }

    private static func hex(_ value: Int) -> [UInt8] {
        let digits: StaticString = "0123456789abcdef"
        var text: [UInt8] = []
        var rest = value
        repeat {
            text.insert(digits.utf8Start[rest & 15], at: 0)
            rest >>= 4
        } while rest > 0
        return text
    }
}
