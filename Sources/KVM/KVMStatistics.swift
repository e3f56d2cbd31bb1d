import CKVM
import Glibc

/// A vCPU's or VM's binary statistics (KVM_GET_STATS_FD): exits by reason, page faults, ...
///
/// The descriptors are read once; `read()` then costs one pread per call.
public final class KVMStatistics: @unchecked Sendable {
    private let fd: OwnedFileDescriptor
    private let dataOffset: Int
    /// (name, offset into the data block) of every single-valued statistic.
    private let counters: [(name: String, offset: Int)]
    private let dataSize: Int

    init(fd: OwnedFileDescriptor) throws(KVMError) {
        self.fd = fd
        var header = kvm_stats_header()
        guard pread(fd.rawValue, &header, MemoryLayout<kvm_stats_header>.size, 0) == MemoryLayout<kvm_stats_header>.size
        else {
            throw KVMError.ioctlFailed("reading the KVM statistics header", .current)
        }
        let descriptorSize = MemoryLayout<kvm_stats_desc>.size + Int(header.name_size)
        var descriptors = [UInt8](repeating: 0, count: descriptorSize * Int(header.num_desc))
        let expected = descriptors.count
        let got = descriptors.withUnsafeMutableBytes {
            pread(fd.rawValue, $0.baseAddress, expected, off_t(header.desc_offset))
        }
        guard got == expected else { throw KVMError.ioctlFailed("reading the KVM statistics descriptors", .current) }

        var counters: [(String, Int)] = []
        var dataSize = 0
        descriptors.withUnsafeBytes { bytes in
            for index in 0..<Int(header.num_desc) {
                let start = index * descriptorSize
                let descriptor = bytes.loadUnaligned(fromByteOffset: start, as: kvm_stats_desc.self)
                dataSize = max(dataSize, Int(descriptor.offset) + 8 * Int(descriptor.size))
                guard descriptor.size == 1 else { continue }
                let nameBytes = bytes[(start + MemoryLayout<kvm_stats_desc>.size)..<(start + descriptorSize)]
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                counters.append((name, Int(descriptor.offset)))
            }
        }
        self.counters = counters
        self.dataSize = dataSize
        self.dataOffset = Int(header.data_offset)
    }

    /// The current value of every single-valued statistic, by KVM's name for it.
    public func read() -> [String: UInt64] {
        var data = [UInt8](repeating: 0, count: dataSize)
        let size = dataSize
        let got = data.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, size, off_t(dataOffset)) }
        guard got == size else { return [:] }
        return data.withUnsafeBytes { bytes in
            Dictionary(
                uniqueKeysWithValues: counters.map {
                    ($0.name, bytes.loadUnaligned(fromByteOffset: $0.offset, as: UInt64.self))
                })
        }
    }
}
