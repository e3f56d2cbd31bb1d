/// A xoshiro256** generator seeded by the monitor from the host's getrandom(2).
/// It backs Swift's hashing seeds (arc4random_buf) and the stack canary.
enum Random {
    nonisolated(unsafe) static var state: (UInt64, UInt64, UInt64, UInt64) = (1, 2, 3, 4)

    static func seed(_ seed: (UInt64, UInt64, UInt64, UInt64)) {
        state = seed
        if state == (0, 0, 0, 0) { state.0 = 0x9E37_79B9_7F4A_7C15 }
    }

    static func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    static func fill(_ buffer: UnsafeMutableRawPointer, count: Int) {
        var offset = 0
        while offset < count {
            var word = next()
            let chunk = min(8, count - offset)
            withUnsafeBytes(of: &word) { bytes in
                for index in 0..<chunk { buffer.storeBytes(of: bytes[index], toByteOffset: offset + index, as: UInt8.self) }
            }
            offset += chunk
        }
    }

    private static func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

@_cdecl("arc4random_buf")
public func arc4randomBuffer(_ buffer: UnsafeMutableRawPointer, _ count: Int) {
    Random.fill(buffer, count: count)
}
