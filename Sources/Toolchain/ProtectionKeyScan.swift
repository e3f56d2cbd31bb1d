import GuestImage

/// Under intel-mpk any compartment can jump to any code it can see, so an instruction
/// that writes PKRU anywhere but in a gate would let it open every key (ERIM's insight).
/// The scan looks at every byte offset of the image's code, aligned to an instruction or
/// not, for WRPKRU (0F 01 EF) and for XRSTOR, XRSTOR64 (0F AE /5) and XRSTORS (0F C7 /3)
/// with a memory operand, which can load PKRU from memory. FlexOS does not check this.
struct ProtectionKeyScan {
    struct Finding: Equatable {
        /// The library (or "runtime") whose code holds it.
        let owner: String
        let section: String
        let offset: UInt64
        let address: UInt64
        let instruction: String
    }

    /// Every PKRU-writing byte sequence in `bytes` (code loaded at `base`), by offset.
    static func occurrences(in bytes: UnsafeRawBufferPointer) -> [(offset: Int, instruction: String)] {
        var found: [(Int, String)] = []
        guard bytes.count >= 3 else { return found }
        for index in 0...(bytes.count - 3) where bytes[index] == 0x0F {
            let opcode = bytes[index + 1]
            let modrm = bytes[index + 2]
            let memoryOperand = modrm >> 6 != 3
            let register = (modrm >> 3) & 7
            if opcode == 0x01 && modrm == 0xEF { found.append((index, "WRPKRU (0f 01 ef)")) }
            if opcode == 0xAE && register == 5 && memoryOperand { found.append((index, "XRSTOR (0f ae /5)")) }
            if opcode == 0xC7 && register == 3 && memoryOperand { found.append((index, "XRSTORS (0f c7 /3)")) }
        }
        return found
    }

    /// The findings in the executable sections of `image`, except inside `gates` (the
    /// address ranges of the generated gates, where WRPKRU belongs).
    static func scan(_ image: ELFImage, owners: [String], gates: [Range<UInt64>] = []) -> [Finding] {
        var findings: [Finding] = []
        for section in image.allocatedSections where section.name.hasPrefix(".text") {
            guard let segment = image.segment(containing: section.address), segment.executable else { continue }
            let start = section.address - segment.virtualAddress
            guard start < segment.fileSize else { continue }
            let bytes = image.fileBytes(of: segment)
            let slice = UnsafeRawBufferPointer(
                rebasing: bytes[Int(start)..<Int(min(start + section.size, segment.fileSize))])
            let owner = owners.first { section.name == ".text." + $0 } ?? "runtime"
            for (offset, instruction) in occurrences(in: slice) {
                let address = section.address + UInt64(offset)
                guard !gates.contains(where: { $0.contains(address) }) else { continue }
                findings.append(
                    Finding(
                        owner: owner, section: section.name, offset: UInt64(offset), address: address,
                        instruction: instruction))
            }
        }
        return findings
    }
}
