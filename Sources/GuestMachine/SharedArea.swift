import CFlexOSABI
import GuestImage
import KVM

/// The memory every VM of an image set shares: the image's shared data and the gate block.
package enum SharedArea {
    /// Copies `.data_shared` into the shared area and sets up the gate block header.
    package static func initialise(_ shared: GuestMemory, image: ELFImage, layout: ImageSetLayout)
        throws(LaunchError)
    {
        let base = layout.sharedArea.lowerBound
        for segment in image.segments where layout.sharedArea.contains(segment.virtualAddress) {
            guard segment.range.upperBound <= layout.sharedArea.upperBound else {
                throw LaunchError.sharedMemoryTooSmall(shared.size, minimum: segment.range.upperBound - base)
            }
            do { try shared.write(image.fileBytes(of: segment), at: segment.virtualAddress - base) } catch {
                throw LaunchError.kvm(error)
            }
        }
        guard
            let block = shared.pointer(
                at: layout.gateBlock.lowerBound - base, length: UInt64(MemoryLayout<flexos_gate_header>.size))
        else {
            throw LaunchError.sharedMemoryTooSmall(shared.size, minimum: layout.gateBlock.upperBound - base)
        }
        let gates = block.bindMemory(to: flexos_gate_header.self, capacity: 1)
        gates.pointee.magic = FLEXOS_GATE_MAGIC
        gates.pointee.compartment_count = UInt32(layout.compartments.count)
    }
}
