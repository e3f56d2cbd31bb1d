/// A xoshiro256** generator per compartment, seeded by the monitor from the host's
/// getrandom(2). Its state is the running compartment's (CompartmentRuntime), so under
/// intel-mpk no compartment can read or set another's. It backs Swift's hashing seeds
/// (arc4random_buf) and the stack canary.
enum Random {
    static func next() -> UInt64 {
        let runtime = CompartmentRuntime.current
        if runtime.pointee.random_state == (0, 0, 0, 0) { runtime.pointee.random_state.0 = 0x9E37_79B9_7F4A_7C15 }
        return next(&runtime.pointee.random_state)
    }

    private static func next(_ state: inout (UInt64, UInt64, UInt64, UInt64)) -> UInt64 {
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
