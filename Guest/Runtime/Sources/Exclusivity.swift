import CFlexOSGuest

/// Swift's dynamic exclusivity enforcement, for libraries built with the hardening
/// exclusivity-checks (the build keeps their calls to swift_beginAccess and
/// swift_endAccess: Toolchain's ExclusivityBuild; support.c forwards them here).
///
/// Each access in progress is a record in its caller's frame (the 3-word buffer the
/// compiler passes), linked into a list per compartment: under intel-mpk a compartment
/// cannot read another's stack, so it walks only its own records.
enum Exclusivity {
    /// The compiler's buffer: the address accessed, the code that began the access, and
    /// the next record with the access kind in its low bit.
    struct Access {
        var pointer: UInt
        var pc: UInt
        var nextAndAction: UInt
    }

    static let modifyBit: UInt = 1
    /// Set when the access is tracked (recorded until it ends); otherwise only checked.
    static let trackingFlag: UInt = 0x20

    /// The running compartment's list, in its own runtime state.
    static var head: UnsafeMutablePointer<UInt> { flexos_access_head(CompartmentRuntime.current) }
}

@_cdecl("flexos_begin_access")
public func beginAccess(_ pointer: UInt, _ buffer: UnsafeMutableRawPointer, _ flags: UInt, _ pc: UInt) {
    let modifies = flags & Exclusivity.modifyBit != 0
    var record = Exclusivity.head.pointee
    while record != 0 {
        let access = UnsafePointer<Exclusivity.Access>(bitPattern: record)!.pointee
        if access.pointer == pointer && (modifies || access.nextAndAction & Exclusivity.modifyBit != 0) {
            var text = PanicText("exclusivity violation (exclusivity-checks): ")
            text.append(modifies ? "a modification" : "a read")
            text.append(" of ")
            text.append(hex: pointer)
            text.append(" overlaps ")
            text.append(access.nextAndAction & Exclusivity.modifyBit != 0 ? "a modification" : "a read")
            text.append(" of it begun at ")
            text.append(hex: access.pc)
            text.append(" and not yet ended (the code named here is the second access)")
            text.panic(codeAddress: pc)
        }
        record = access.nextAndAction & ~Exclusivity.modifyBit
    }
    guard flags & Exclusivity.trackingFlag != 0 else { return }
    let access = buffer.assumingMemoryBound(to: Exclusivity.Access.self)
    access.pointee = Exclusivity.Access(pointer: pointer, pc: pc, nextAndAction: Exclusivity.head.pointee | (modifies ? Exclusivity.modifyBit : 0))
    Exclusivity.head.pointee = UInt(bitPattern: buffer)
}

@_cdecl("flexos_end_access")
public func endAccess(_ buffer: UnsafeMutableRawPointer) {
    // Each link is a head or a record's nextAndAction word, whose low bit is that record's kind.
    let target = UInt(bitPattern: buffer), bit = Exclusivity.modifyBit
    var link = Exclusivity.head
    while link.pointee & ~bit != 0 {
        let record = UnsafeMutableRawPointer(bitPattern: link.pointee & ~bit)!
        let next = record.advanced(by: MemoryLayout<Exclusivity.Access>.offset(of: \.nextAndAction)!).assumingMemoryBound(to: UInt.self)
        if link.pointee & ~bit == target {
            link.pointee = (link.pointee & bit) | (next.pointee & ~bit)
            return
        }
        link = next
    }
}
