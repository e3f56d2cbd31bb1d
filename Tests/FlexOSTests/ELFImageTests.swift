import CFlexOSABI
import Foundation
import GuestImage
import Testing

/// The loader's checks, fed real images and copies of them broken on purpose.
@Suite(.tags(.boot), .beyondTheUnitTier) struct ELFImageTests {
    /// A copy of the hello image, changed by `edit`, in a temporary file.
    func brokenCopy(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try TestImages.build("Guest/Apps/hello").image)))
        edit(&bytes)
        let path = NSTemporaryDirectory() + "flexos-\(name)-\(getpid()).elf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Offsets into the ELF64 header and the first program header.
    func programHeader(_ bytes: [UInt8], _ index: Int) -> Int {
        let offset = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0x20, as: UInt64.self) })
        let size = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0x36, as: UInt16.self) })
        return offset + index * size
    }

    func put<T>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: T.self) }
    }

    @Test func loadsTheHelloImage() throws {
        let image = try ELFImage(path: try TestImages.build("Guest/Apps/hello").image)
        #expect(image.abiVersion == FLEXOS_ABI_VERSION)
        #expect(image.segments.contains { $0.executable && $0.range.contains(image.entry) })
        #expect(image.segments.allSatisfy { GuestLayout.image.contains($0.virtualAddress) })
        #expect(image.allocatedSections.contains { $0.name == ".text.hello" })
    }

    @Test func refusesAFileThatIsNotELF() throws {
        let path = NSTemporaryDirectory() + "flexos-notelf-\(getpid())"
        try "#!/bin/sh\necho not a guest\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ImageError.notELF(path: path)) { try ELFImage(path: path) }
    }

    @Test func refusesAMissingFile() {
        #expect { try ELFImage(path: "/nonexistent/guest.elf") } throws: { error in
            (error as? ImageError)?.description.contains("No such file") == true
        }
    }

    @Test func refusesATruncatedImage() throws {
        let path = try brokenCopy("truncated") { $0 = Array($0.prefix(0x1800)) }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("truncated") == true
        }
    }

    @Test func refusesAnImageForAnotherMachine() throws {
        let path = try brokenCopy("aarch64") { put(UInt16(183), at: 0x12, in: &$0) }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("built for AArch64") == true
        }
    }

    @Test func refusesA32BitImage() throws {
        let path = try brokenCopy("elf32") { $0[4] = 1 }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("32-bit") == true
        }
    }

    @Test func refusesASharedObject() throws {
        let path = try brokenCopy("dyn") { put(UInt16(3), at: 0x10, in: &$0) }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("ET_DYN") == true
        }
    }

    @Test func refusesOverlappingSegments() throws {
        let path = try brokenCopy("overlap") { bytes in
            let first = programHeader(bytes, 0)
            let second = programHeader(bytes, 1)
            let address = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: first + 0x10, as: UInt64.self) }
            put(address, at: second + 0x10, in: &bytes)
        }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("overlap") == true
        }
    }

    @Test func refusesSegmentsOutsideGuestMemory() throws {
        let path = try brokenCopy("outside") { bytes in
            put(UInt64(0x7FFF_0000_0000), at: programHeader(bytes, 1) + 0x10, in: &bytes)
        }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("outside guest memory") == true
        }
    }

    @Test func refusesAnImageBuiltForAnotherABI() throws {
        let image = try ELFImage(path: try TestImages.build("Guest/Apps/hello").image)
        let section = image.allocatedSections.first { $0.name == ".flexos_abi" }!
        let segment = image.segment(containing: section.address)!
        let fileOffset = Int(segment.fileOffset + (section.address - segment.virtualAddress))
        let path = try brokenCopy("abi") { put(UInt32(99), at: fileOffset, in: &$0) }
        #expect(throws: ImageError.abiVersionMismatch(path: path, found: 99, expected: FLEXOS_ABI_VERSION)) {
            try ELFImage(path: path)
        }
    }

    // MARK: - Offsets and sizes near 2^64 (each once trapped the monitor)

    /// The file offset of the section header named `name`.
    func sectionHeader(_ bytes: [UInt8], named name: String) -> Int? {
        func load<T>(_ offset: Int, _ type: T.Type) -> T {
            bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        }
        let table = Int(load(0x28, UInt64.self))
        let size = Int(load(0x3A, UInt16.self))
        let count = Int(load(0x3C, UInt16.self))
        let names = Int(load(table + Int(load(0x3E, UInt16.self)) * size + 0x18, UInt64.self))
        return (0..<count).map { table + $0 * size }.first { header in
            let start = names + Int(load(header, UInt32.self))
            return Array(bytes[start..<start + name.utf8.count + 1]) == Array(name.utf8) + [0]
        }
    }

    @Test func refusesProgramHeadersAtAnOffsetNear2To64() throws {
        let path = try brokenCopy("phoff") { put(UInt64.max - 8, at: 0x20, in: &$0) }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("the program headers start at byte 18446744073709551607")
                == true
        }
    }

    @Test func refusesSectionHeadersPastTheEnd() throws {
        let path = try brokenCopy("shoff") { put(UInt64.max - 8, at: 0x28, in: &$0) }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("the section headers start at byte") == true
        }
    }

    @Test func refusesAnABISectionAtAnOffsetNear2To64() throws {
        let path = try brokenCopy("abioffset") { bytes in
            put(UInt64.max - 2, at: sectionHeader(bytes, named: ".flexos_abi")! + 0x18, in: &bytes)
        }
        #expect(throws: ImageError.self) { try ELFImage(path: path) }
    }

    @Test func refusesABigEndianImage() throws {
        let path = try brokenCopy("bigendian") { $0[5] = 2 }
        #expect(throws: ImageError.notLittleEndian(path: path)) { try ELFImage(path: path) }
    }

    @Test func explainsAnEmptyEntrySegment() throws {
        let image = try ELFImage(path: try TestImages.build("Guest/Apps/hello").image)
        let entrySegment = image.segments.first { $0.range.contains(image.entry) }!
        let path = try brokenCopy("emptyentry") { bytes in
            let header = programHeader(bytes, entrySegment.index)
            put(image.entry, at: header + 0x10, in: &bytes)
            put(UInt64(0), at: header + 0x20, in: &bytes)
            put(UInt64(0), at: header + 0x28, in: &bytes)
        }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("is empty (p_memsz 0), yet the entry point") == true
        }
    }

    @Test func aSegmentPastTheEndSaysWhatItNeeds() throws {
        let path = try brokenCopy("segmentend") { bytes in
            put(UInt64.max - 16, at: programHeader(bytes, 0) + 0x08, in: &bytes)
        }
        #expect { try ELFImage(path: path) } throws: { error in
            (error as? ImageError)?.description.contains("from offset 18446744073709551599") == true
        }
    }
}
