import FlexOS

@inline(never)
func executePrivilegedInstruction() {
    privilegedcode.halt()
}

@_cdecl("app_main")
public func appMain() -> Int32 {
    print("about to execute hlt in ring 3")
    executePrivilegedInstruction()
    return 0
}
