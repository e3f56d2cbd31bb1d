import CElf
import Glibc

/// A symbol of a guest image.
public struct GuestSymbol: Equatable, Sendable {
    public let name: String
    public let address: UInt64
    public let size: UInt64
    public let isFunction: Bool

    /// The name as a person reads it: Swift names demangled, C names as they are.
    public var displayName: String { demangle(name) }
}

/// A position in a guest source file.
public struct SourceLocation: Equatable, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public var description: String { "\(file):\(line)" }

    /// A line of a real file: not line 0, nor the compiler's own code.
    var isSource: Bool { line > 0 && !file.contains("<compiler-generated>") }
}

/// Turns guest addresses into symbol+offset and file:line.
///
/// Symbols come from the image's `.symtab` (libelf); file:line from its DWARF line
/// tables (libdw), when the image was built with debug information. Built on first use:
/// a guest that never faults never pays for it.
public final class Symbolizer: @unchecked Sendable {
    private let image: ELFImage
    /// Functions and objects with an address, sorted by address.
    public let symbols: [GuestSymbol]
    private lazy var dwarf: OpaquePointer? = dwarf_begin_elf(image.elf, DWARF_C_READ, nil)

    public init(image: ELFImage) {
        self.image = image
        // At one address, generated gate aliases sort first, so the function's own name wins.
        self.symbols = Symbolizer.readSymbols(image.elf).sorted {
            ($0.address, $0.name.hasPrefix("flexos_gate_") ? 0 : 1) < (
                $1.address, $1.name.hasPrefix("flexos_gate_") ? 0 : 1
            )
        }
    }

    deinit { if let dwarf { dwarf_end(dwarf) } }

    /// The symbol that contains `address` and how far into it `address` lies.
    public func symbol(containing address: UInt64) -> (symbol: GuestSymbol, offset: UInt64)? {
        var low = 0
        var high = symbols.count
        while low < high {
            let middle = (low + high) / 2
            if symbols[middle].address <= address { low = middle + 1 } else { high = middle }
        }
        var index = low - 1
        while index >= 0 {
            let candidate = symbols[index]
            if address - candidate.address < max(candidate.size, 1) { return (candidate, address - candidate.address) }
            if candidate.size > 0 && candidate.isFunction { break }
            index -= 1
        }
        return nil
    }

    /// The symbol named `name` (its raw, mangled name).
    public func symbol(named name: String) -> GuestSymbol? {
        symbols.first { $0.name == name }
    }

    /// "function + 0x12" for `address`, or the bare address when no symbol covers it.
    public func describe(_ address: UInt64) -> String {
        guard let (symbol, offset) = symbol(containing: address) else { return hex(address) }
        return offset == 0 ? symbol.displayName : "\(symbol.displayName) + \(hex(offset))"
    }

    /// The source line of the instruction at `address`, from DWARF.
    public func sourceLocation(of address: UInt64) -> SourceLocation? {
        guard var unit = compileUnit(containing: address) else { return nil }
        if let line = dwarf_getsrc_die(&unit, address), let file = dwarf_linesrc(line, nil, nil) {
            var number: Int32 = 0
            let location = SourceLocation(
                file: String(cString: file), line: Int(dwarf_lineno(line, &number) == 0 ? number : 0))
            if location.isSource { return location }
        }
        return inlinedCallSite(of: address, unit: &unit)
    }

    /// Where code inlined from the standard library (which has no line, e.g. an allocation
    /// inside `UnsafeMutablePointer.allocate`) was called from: the innermost inlined
    /// call whose call site is a real source line.
    private func inlinedCallSite(of address: UInt64, unit: inout Dwarf_Die) -> SourceLocation? {
        var files: OpaquePointer?
        var fileCount = 0
        guard dwarf_getsrcfiles(&unit, &files, &fileCount) == 0 else { return nil }
        for var call in inlinedCalls(containing: address, under: &unit, depth: 0).reversed() {
            var attribute = Dwarf_Attribute()
            var line: Dwarf_Word = 0
            var fileIndex: Dwarf_Word = 0
            guard dwarf_formudata(dwarf_attr(&call, UInt32(DW_AT_call_line), &attribute), &line) == 0,
                dwarf_formudata(dwarf_attr(&call, UInt32(DW_AT_call_file), &attribute), &fileIndex) == 0,
                let name = dwarf_filesrc(files, Int(fileIndex), nil, nil)
            else { continue }
            let location = SourceLocation(file: String(cString: name), line: Int(line))
            if location.isSource { return location }
        }
        return nil
    }

    /// The inlined calls whose code covers `address`, outermost first. (libdw's
    /// dwarf_getscopes finds none in Swift's DWARF, whose functions sit inside modules
    /// and types.) Containers without code of their own are searched; code that does not
    /// cover `address` is not.
    private func inlinedCalls(containing address: UInt64, under parent: inout Dwarf_Die, depth: Int) -> [Dwarf_Die] {
        var child = Dwarf_Die()
        var sibling = Dwarf_Die()
        guard depth < 64, dwarf_child(&parent, &child) == 0 else { return [] }
        repeat {
            let hasCode =
                dwarf_hasattr(&child, UInt32(DW_AT_low_pc)) != 0 || dwarf_hasattr(&child, UInt32(DW_AT_ranges)) != 0
            if !hasCode || dwarf_haspc(&child, address) > 0 {
                let inner = inlinedCalls(containing: address, under: &child, depth: depth + 1)
                if hasCode {
                    return (dwarf_tag(&child) == Int32(DW_TAG_inlined_subroutine) ? [child] : []) + inner
                }
                if !inner.isEmpty { return inner }
            }
            guard dwarf_siblingof(&child, &sibling) == 0 else { break }
            child = sibling
        } while true
        return []
    }

    /// The compile unit whose code covers `address`. Walks the units: Swift emits no
    /// .debug_aranges, which `dwarf_addrdie` relies on.
    private func compileUnit(containing address: UInt64) -> Dwarf_Die? {
        guard let dwarf else { return nil }
        var offset: Dwarf_Off = 0
        var next: Dwarf_Off = 0
        var headerSize = 0
        while dwarf_nextcu(dwarf, offset, &next, &headerSize, nil, nil, nil) == 0 {
            var unit = Dwarf_Die()
            if dwarf_offdie(dwarf, offset + Dwarf_Off(headerSize), &unit) != nil, dwarf_haspc(&unit, address) > 0 {
                return unit
            }
            offset = next
        }
        return nil
    }

    private static func readSymbols(_ elf: OpaquePointer) -> [GuestSymbol] {
        guard let table = ELFSections(elf).first(where: { $0.header.sh_type == UInt32(SHT_SYMTAB) }),
            let data = elf_getdata(table.handle, nil), table.header.sh_entsize > 0
        else { return [] }
        var symbols: [GuestSymbol] = []
        // The table's size is the file's word: count only the entries its data holds.
        let count = min(table.header.sh_size, UInt64(data.pointee.d_size)) / table.header.sh_entsize
        for index in 0..<Int32(clamping: count) {
            var symbol = GElf_Sym()
            guard gelf_getsym(data, index, &symbol) != nil, symbol.st_value != 0 else { continue }
            let type = Int32(symbol.st_info & 0xf)
            guard type == STT_FUNC || type == STT_OBJECT,
                let name = elf_strptr(elf, Int(table.header.sh_link), Int(symbol.st_name))
            else { continue }
            symbols.append(
                GuestSymbol(
                    name: String(cString: name), address: symbol.st_value, size: symbol.st_size,
                    isFunction: type == STT_FUNC))
        }
        return symbols
    }
}

@_silgen_name("swift_demangle")
private func swiftDemangle(
    _ mangledName: UnsafePointer<CChar>?, _ length: Int,
    _ outputBuffer: UnsafeMutablePointer<CChar>?, _ outputBufferSize: UnsafeMutablePointer<Int>?,
    _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?

/// The Swift runtime's demangling of `name`, or `name` itself when it is not a Swift name.
/// The optimiser's specialisation wrappers are left out: what remains is the function
/// a person wrote.
public func demangle(_ name: String) -> String {
    guard name.hasPrefix("$") || name.hasPrefix("_$") else { return name }
    guard let demangled = name.withCString({ swiftDemangle($0, name.utf8.count, nil, nil, 0) }) else { return name }
    defer { free(demangled) }
    return withoutSpecializations(String(cString: demangled))
}

/// "function signature specialization <...> of generic specialization <...> of f()" -> "f()".
func withoutSpecializations(_ name: String) -> String {
    var rest = Substring(name)
    while let wrapper = ["function signature specialization <", "generic specialization <", "specialized "].first(
        where: rest.hasPrefix)
    {
        guard wrapper.hasSuffix("<") else {
            rest = rest.dropFirst(wrapper.count)
            continue
        }
        var depth = 0
        var index = rest.startIndex
        while index < rest.endIndex {
            if rest[index] == "<" { depth += 1 }
            if rest[index] == ">" {
                depth -= 1
                if depth == 0 { break }
            }
            index = rest.index(after: index)
        }
        let after = rest[index...].dropFirst()
        guard after.hasPrefix(" of ") else { return name }
        rest = after.dropFirst(4)
    }
    return String(rest)
}
