import CElf
import CFlexOSABI
import Glibc

/// A loadable segment of a guest ELF (one PT_LOAD program header).
public struct ELFSegment: Equatable, Sendable {
    public let index: Int
    public let virtualAddress: UInt64
    public let memorySize: UInt64
    public let fileOffset: UInt64
    public let fileSize: UInt64
    public let readable: Bool
    public let writable: Bool
    public let executable: Bool

    public var range: Range<UInt64> { virtualAddress..<(virtualAddress + memorySize) }
}

/// A guest image: a static x86-64 ELF executable, checked and mapped read-only.
///
/// The checks run once, at load: that it is an ELF at all, 64-bit, for x86-64, a static
/// executable, not truncated, with segments that neither overlap nor leave guest memory,
/// an executable entry point and the FlexOS ABI version this monitor speaks.
public final class ELFImage: @unchecked Sendable {
    public let path: String
    public let entry: UInt64
    public let segments: [ELFSegment]
    /// The ABI version from the image's `.flexos_abi` section.
    public let abiVersion: UInt32
    /// Where the stack canary is (its section, 8 bytes), for the monitor to fill.
    public let stackGuardAddress: UInt64?
    /// The whole file, mapped read-only.
    let file: UnsafeRawBufferPointer
    /// libelf's handle, kept for the symbolizer.
    let elf: OpaquePointer

    /// Loads and checks the ELF at `path`.
    public init(path: String) throws(ImageError) {
        self.path = path
        file = try ELFImage.map(path)
        elf_version(UInt32(EV_CURRENT))
        guard
            let elf = elf_memory(
                UnsafeMutableRawPointer(mutating: file.baseAddress)?.assumingMemoryBound(to: CChar.self), file.count)
        else {
            munmap(UnsafeMutableRawPointer(mutating: file.baseAddress), max(file.count, 1))
            throw ImageError.notELF(path: path)
        }
        self.elf = elf
        do {
            let header = try ELFImage.checkHeader(elf, path: path, fileSize: file.count)
            entry = header.e_entry
            segments = try ELFImage.readSegments(elf, header: header, path: path, fileSize: UInt64(file.count))
            try ELFImage.checkPlacement(segments, entry: entry, path: path)
            abiVersion = try ELFImage.readABIVersion(elf, path: path, file: file)
            stackGuardAddress = ELFSections(elf).first(named: GuestLayout.stackGuardSection)
                .flatMap {
                    $0.header.sh_size >= 8 && $0.header.sh_flags & UInt64(SHF_WRITE) == 0 ? $0.header.sh_addr : nil
                }
        } catch {
            elf_end(elf)
            munmap(UnsafeMutableRawPointer(mutating: file.baseAddress), max(file.count, 1))
            throw error
        }
    }

    deinit {
        elf_end(elf)
        munmap(UnsafeMutableRawPointer(mutating: file.baseAddress), max(file.count, 1))
    }

    /// The bytes a segment has in the file (its initialised part; the rest is zero).
    public func fileBytes(of segment: ELFSegment) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file[Int(segment.fileOffset)..<Int(segment.fileOffset + segment.fileSize)])
    }

    /// The sections that occupy guest memory (SHF_ALLOC), by name, in address order.
    public var allocatedSections: [(name: String, address: UInt64, size: UInt64)] {
        ELFSections(elf)
            .filter { $0.header.sh_flags & UInt64(SHF_ALLOC) != 0 && $0.header.sh_size > 0 }
            .map { ($0.name, $0.header.sh_addr, $0.header.sh_size) }
            .sorted { $0.address < $1.address }
    }

    /// The first segment that contains `address`.
    public func segment(containing address: UInt64) -> ELFSegment? {
        segments.first { $0.range.contains(address) }
    }

    // MARK: - Checks, in the order they run

    private static func map(_ path: String) throws(ImageError) -> UnsafeRawBufferPointer {
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw ImageError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard status.st_size > 0 else { throw ImageError.notELF(path: path) }
        guard let mapping = mmap(nil, Int(status.st_size), PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw ImageError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        return UnsafeRawBufferPointer(start: mapping, count: Int(status.st_size))
    }

    private static func checkHeader(_ elf: OpaquePointer, path: String, fileSize: Int) throws(ImageError) -> GElf_Ehdr {
        guard elf_kind(elf) == ELF_K_ELF else { throw ImageError.notELF(path: path) }
        guard gelf_getclass(elf) == ELFCLASS64 else {
            if gelf_getclass(elf) == ELFCLASS32 { throw ImageError.notELF64(path: path) }
            throw ImageError.truncated(path: path, detail: "the ELF header is incomplete")
        }
        var header = GElf_Ehdr()
        guard gelf_getehdr(elf, &header) != nil else {
            throw ImageError.truncated(path: path, detail: "the ELF header is incomplete")
        }
        guard header.e_ident.5 == UInt8(ELFDATA2LSB) else { throw ImageError.notLittleEndian(path: path) }
        guard header.e_machine == UInt16(EM_X86_64) else {
            throw ImageError.wrongMachine(path: path, machine: header.e_machine)
        }
        guard header.e_type == UInt16(ET_EXEC) else { throw ImageError.notExecutable(path: path, type: header.e_type) }
        // e_phnum and e_phentsize are 16-bit, so only the offset can make the sum wrap.
        let (tableEnd, overflow) = header.e_phoff.addingReportingOverflow(
            UInt64(header.e_phnum) * UInt64(header.e_phentsize))
        guard !overflow, tableEnd <= UInt64(fileSize) else {
            throw ImageError.truncated(
                path: path,
                detail: "the program headers start at byte \(header.e_phoff), past the end of the \(fileSize)-byte file"
            )
        }
        let (sectionsEnd, sectionsOverflow) = header.e_shoff.addingReportingOverflow(
            UInt64(header.e_shnum) * UInt64(header.e_shentsize))
        guard !sectionsOverflow, sectionsEnd <= UInt64(fileSize) else {
            throw ImageError.truncated(
                path: path,
                detail: "the section headers start at byte \(header.e_shoff), past the end of the \(fileSize)-byte file"
            )
        }
        return header
    }

    private static func readSegments(_ elf: OpaquePointer, header: GElf_Ehdr, path: String, fileSize: UInt64)
        throws(ImageError) -> [ELFSegment]
    {
        var segments: [ELFSegment] = []
        for index in 0..<Int(header.e_phnum) {
            var program = GElf_Phdr()
            guard gelf_getphdr(elf, Int32(index), &program) != nil else {
                throw ImageError.truncated(path: path, detail: "program header \(index) cannot be read")
            }
            guard program.p_type == UInt32(PT_LOAD) else { continue }
            guard program.p_memsz > 0 else {
                if program.p_vaddr == header.e_entry {
                    throw ImageError.inconsistentSegment(
                        path: path, index: index,
                        detail: "is empty (p_memsz 0), yet the entry point \(hex(header.e_entry)) is its start")
                }
                continue
            }
            let segment = ELFSegment(
                index: index, virtualAddress: program.p_vaddr, memorySize: program.p_memsz,
                fileOffset: program.p_offset, fileSize: program.p_filesz,
                readable: program.p_flags & UInt32(PF_R) != 0,
                writable: program.p_flags & UInt32(PF_W) != 0,
                executable: program.p_flags & UInt32(PF_X) != 0)
            try checkSegment(segment, path: path, fileSize: fileSize)
            segments.append(segment)
        }
        guard !segments.isEmpty else { throw ImageError.noLoadableSegments(path: path) }
        return segments
    }

    private static func checkSegment(_ segment: ELFSegment, path: String, fileSize: UInt64) throws(ImageError) {
        guard segment.fileSize <= segment.memorySize else {
            throw ImageError.inconsistentSegment(
                path: path, index: segment.index,
                detail: "has more bytes in the file (\(segment.fileSize)) than in memory (\(segment.memorySize))")
        }
        let (fileEnd, fileOverflow) = segment.fileOffset.addingReportingOverflow(segment.fileSize)
        guard !fileOverflow, fileEnd <= fileSize else {
            throw ImageError.truncated(
                path: path,
                detail:
                    "segment \(segment.index) needs \(segment.fileSize) bytes from offset \(segment.fileOffset), but the file has \(fileSize)"
            )
        }
        let (_, memoryOverflow) = segment.virtualAddress.addingReportingOverflow(segment.memorySize)
        guard !memoryOverflow else {
            throw ImageError.segmentOutsideGuestMemory(
                path: path, index: segment.index, start: segment.virtualAddress, end: .max)
        }
    }

    private static func checkPlacement(_ segments: [ELFSegment], entry: UInt64, path: String) throws(ImageError) {
        for segment in segments {
            guard GuestLayout.holdsImageRange(start: segment.virtualAddress, size: segment.memorySize) else {
                throw ImageError.segmentOutsideGuestMemory(
                    path: path, index: segment.index, start: segment.virtualAddress, end: segment.range.upperBound)
            }
        }
        let pages = segments.map {
            alignDown($0.virtualAddress, GuestLayout.pageSize)..<alignUp($0.range.upperBound, GuestLayout.pageSize)
        }
        for first in segments.indices {
            for second in segments.indices where second > first {
                if segments[first].range.overlaps(segments[second].range) {
                    throw ImageError.overlappingSegments(
                        path: path, first: segments[first].index, second: segments[second].index)
                }
                if pages[first].overlaps(pages[second]) {
                    throw ImageError.inconsistentSegment(
                        path: path, index: segments[second].index,
                        detail:
                            "shares a page with segment \(segments[first].index); each segment needs pages of its own")
                }
            }
        }
        guard segments.contains(where: { $0.executable && $0.range.contains(entry) }) else {
            throw ImageError.entryNotExecutable(path: path, entry: entry)
        }
    }

    private static func readABIVersion(_ elf: OpaquePointer, path: String, file: UnsafeRawBufferPointer)
        throws(ImageError) -> UInt32
    {
        guard let section = ELFSections(elf).first(named: ".flexos_abi"),
            section.header.sh_size >= 4,
            section.header.sh_offset <= UInt64(file.count), UInt64(file.count) - section.header.sh_offset >= 4
        else { throw ImageError.notFlexOSGuest(path: path) }
        let version = file.loadUnaligned(fromByteOffset: Int(section.header.sh_offset), as: UInt32.self)
        guard version == FLEXOS_ABI_VERSION else {
            throw ImageError.abiVersionMismatch(path: path, found: version, expected: FLEXOS_ABI_VERSION)
        }
        return version
    }
}
