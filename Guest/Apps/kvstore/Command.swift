import FlexOS

/// A parsed command, read from its frame in shared memory. The frame came through a
/// gate, so every address is checked to lie in the shared heap before it is read.
struct Command {
    static let headerWords = 4
    let frame: UnsafeMutablePointer<UInt64>
    let count: Int

    init?(frame: UnsafeMutablePointer<UInt64>) {
        guard SharedMemory.holds(frame, count: Command.headerWords * 8) else { return nil }
        let count = Int(truncatingIfNeeded: frame[0])
        guard count > 0, count <= 1 << 20, SharedMemory.holds(frame, count: (Command.headerWords + 2 * count) * 8) else { return nil }
        for index in 0..<count {
            let address = UInt(truncatingIfNeeded: frame[Command.headerWords + 2 * index])
            let length = Int(truncatingIfNeeded: frame[Command.headerWords + 2 * index + 1])
            guard let pointer = UnsafeRawPointer(bitPattern: address), SharedMemory.holds(pointer, count: length) else { return nil }
        }
        self.frame = frame
        self.count = count
    }

    subscript(index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: UnsafePointer(bitPattern: UInt(frame[Command.headerWords + 2 * index])),
                            count: Int(frame[Command.headerWords + 2 * index + 1]))
    }

    /// Argument `index` copied into this compartment's memory.
    func bytes(_ index: Int) -> [UInt8] { Array(self[index]) }

    func isArgument(_ index: Int, _ word: StaticString) -> Bool {
        let bytes = self[index]
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        for position in 0..<bytes.count where bytes[position] | 0x20 != word.utf8Start[position] | 0x20 { return false }
        return true
    }

    /// Bytes of all arguments: what storing this command may cost.
    var payloadBytes: Int {
        var total = 0
        for index in 0..<count { total += self[index].count + 32 }
        return total
    }
}

/// The reply, as records resp formats (see resp's ReplyFormatter.swift), written into the
/// frame's reply buffer; a larger buffer comes from the shared heap when needed.
struct Reply {
    private let frame: UnsafeMutablePointer<UInt64>
    private var base: UnsafeMutablePointer<UInt8>?
    private var capacity: Int
    private var length = 0
    private var failed = false

    init(frame: UnsafeMutablePointer<UInt64>) {
        self.frame = frame
        let capacity = Int(truncatingIfNeeded: frame[2])
        let start = UnsafeMutablePointer<UInt8>(bitPattern: UInt(frame[1]))
        let valid = start.map { SharedMemory.holds($0, count: capacity) } ?? false
        base = valid ? start : nil
        self.capacity = valid ? capacity : 0
    }

    private mutating func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8>? {
        guard !failed else { return nil }
        if let base, length + count <= capacity { return base + length }
        var grown = max(capacity, 4096)
        while grown < length + count { grown *= 2 }
        guard let bigger = SharedMemory.allocate(UInt8.self, count: grown) else { failed = true; return nil }
        if let base {
            bigger.update(from: base, count: length)
            SharedMemory.deallocate(base)
        }
        base = bigger
        capacity = grown
        frame[1] = UInt64(UInt(bitPattern: bigger))
        frame[2] = UInt64(grown)
        return bigger + length
    }

    private mutating func record(_ kind: UInt8, _ word: Int, bytes: UnsafeBufferPointer<UInt8>? = nil) {
        let extra = bytes?.count ?? 0
        guard let target = reserve(9 + extra) else { return }
        target[0] = kind
        UnsafeMutableRawPointer(target + 1).storeBytes(of: Int64(word), as: Int64.self)
        if let bytes, let source = bytes.baseAddress { (target + 9).update(from: source, count: extra) }
        length += 9 + extra
    }

    mutating func simple(_ text: StaticString) {
        record(UInt8(ascii: "+"), text.utf8CodeUnitCount, bytes: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func error(_ text: StaticString) {
        record(UInt8(ascii: "-"), text.utf8CodeUnitCount, bytes: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// An error made of pieces (e.g. naming the command).
    mutating func error(_ pieces: [UInt8]) {
        pieces.withUnsafeBufferPointer { record(UInt8(ascii: "-"), $0.count, bytes: $0) }
    }

    mutating func integer(_ value: Int) { record(UInt8(ascii: ":"), value) }

    mutating func bulk(_ bytes: UnsafeBufferPointer<UInt8>) { record(UInt8(ascii: "$"), bytes.count, bytes: bytes) }

    mutating func bulk(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { bulk($0) } }

    mutating func bulk(_ text: StaticString) { bulk(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }

    mutating func null() {
        guard let target = reserve(1) else { return }
        target[0] = UInt8(ascii: "_")
        length += 1
    }

    mutating func array(_ count: Int) { record(UInt8(ascii: "*"), count) }

    mutating func nullArray() { array(-1) }

    mutating func ok() { simple("OK") }

    /// Publishes the reply's length; one that could not be written becomes an -OOM error.
    mutating func finish() {
        if failed {
            failed = false
            length = 0
            error("OOM the shared heap cannot hold this reply")
        }
        frame[3] = UInt64(length)
    }
}
