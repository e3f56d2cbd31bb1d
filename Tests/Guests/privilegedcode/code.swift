import FlexOS

/// HLT followed by RET, placed with the code and exported as the function `halt`:
/// calling it executes HLT in ring 3, which must fault. (It lives in a library of its
/// own because Swift cannot both define these bytes and call them in one module.)
@section(".text.privileged") @used @_silgen_name("privilegedcode_halt")
let haltThenReturn: (UInt8, UInt8) = (0xF4, 0xC3)
