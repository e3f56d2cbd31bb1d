/// The constant's encoding (movabs) carries 0f 01 ef: a jump into the middle of that
/// instruction would execute WRPKRU.
@inline(never)
func disguised(_ value: UInt64) -> UInt64 { value &+ 0x0000_00EF_010F_0000 }

@_cdecl("app_main")
public func appMain() -> Int32 {
    Int32(truncatingIfNeeded: disguised(1) & 0xFF)
}
