import CElf

/// The section headers of an ELF, with their names, for finding one by name.
struct ELFSections: Sequence {
    struct Section {
        let name: String
        let header: GElf_Shdr
        let handle: OpaquePointer
    }

    private let elf: OpaquePointer

    init(_ elf: OpaquePointer) { self.elf = elf }

    func first(named name: String) -> Section? { first { $0.name == name } }

    func makeIterator() -> AnyIterator<Section> {
        var stringTable = 0
        guard elf_getshdrstrndx(elf, &stringTable) == 0 else { return AnyIterator { nil } }
        var current: OpaquePointer? = nil
        return AnyIterator {
            while let next = elf_nextscn(elf, current) {
                current = next
                var header = GElf_Shdr()
                guard gelf_getshdr(next, &header) != nil else { continue }
                let name = elf_strptr(elf, stringTable, Int(header.sh_name)).map { String(cString: $0) } ?? ""
                return Section(name: name, header: header, handle: next)
            }
            return nil
        }
    }
}
