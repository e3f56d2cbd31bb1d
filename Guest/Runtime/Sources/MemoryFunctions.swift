// The C memory functions the compiler and the Embedded Swift standard library call.
// The runtime is compiled with loop-idiom recognition off, so these loops are not
// turned back into calls to themselves.

@_cdecl("memset")
public func memset(_ destination: UnsafeMutableRawPointer, _ value: Int32, _ count: Int) -> UnsafeMutableRawPointer {
    let byte = UInt8(truncatingIfNeeded: value)
    var index = 0
    while index < count {
        destination.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
        index &+= 1
    }
    return destination
}

@_cdecl("memcpy")
public func memcpy(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) -> UnsafeMutableRawPointer {
    // Eight bytes at a time (unaligned loads and stores are fine on x86-64), then the rest:
    // the network rings and large values are copied with it.
    var index = 0
    while index &+ 8 <= count {
        destination.storeBytes(of: source.loadUnaligned(fromByteOffset: index, as: UInt64.self), toByteOffset: index, as: UInt64.self)
        index &+= 8
    }
    while index < count {
        destination.storeBytes(of: source.load(fromByteOffset: index, as: UInt8.self), toByteOffset: index, as: UInt8.self)
        index &+= 1
    }
    return destination
}

@_cdecl("memmove")
public func memmove(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) -> UnsafeMutableRawPointer {
    if UnsafeRawPointer(destination) <= source || UnsafeRawPointer(destination) >= source + count {
        return memcpy(destination, source, count)
    }
    var index = count
    while index > 0 {
        index &-= 1
        destination.storeBytes(of: source.load(fromByteOffset: index, as: UInt8.self), toByteOffset: index, as: UInt8.self)
    }
    return destination
}

@_cdecl("memcmp")
public func memcmp(_ first: UnsafeRawPointer, _ second: UnsafeRawPointer, _ count: Int) -> Int32 {
    var index = 0
    while index < count {
        let a = first.load(fromByteOffset: index, as: UInt8.self), b = second.load(fromByteOffset: index, as: UInt8.self)
        if a != b { return Int32(a) - Int32(b) }
        index &+= 1
    }
    return 0
}

/// Rounds up to an integral value (Dictionary sizes its tables with it). Written with
/// bit operations: `rounded(.up)` may itself be lowered to a call to ceil.
@_cdecl("ceil")
public func ceil(_ x: Double) -> Double {
    let bits = x.bitPattern
    let exponent = Int((bits >> 52) & 0x7FF) - 1023
    if exponent >= 52 || x.isNaN || x == 0 { return x }
    if exponent < 0 { return x > 0 ? 1.0 : -0.0 }
    let fraction: UInt64 = (1 << UInt64(52 - exponent)) - 1
    if bits & fraction == 0 { return x }
    let truncated = Double(bitPattern: bits & ~fraction)
    return x > 0 ? truncated + 1 : truncated
}
