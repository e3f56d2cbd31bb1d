import FlexOS

/// A batch of parsed commands, read from its frame in shared memory (resp's
/// CommandFrame.swift). The frame came through a gate, so its size and every argument's
/// address are checked to lie in the shared heap before anything is read.
struct Batch {
    static let headerWords = 5
    /// Bit 63 of a command's argument count: one of resp's own commands (Transactions.swift).
    static let internalFlag: UInt64 = 1 << 63
    let frame: UnsafeMutablePointer<UInt64>
    /// Where each command's argument count sits, in words from the frame's start.
    private(set) var commands: [Int] = []

    init?(frame: UnsafeMutablePointer<UInt64>) {
        guard SharedMemory.holds(frame, count: Batch.headerWords * 8) else { return nil }
        let count = Int(truncatingIfNeeded: frame[0]), words = Int(truncatingIfNeeded: frame[4])
        guard count >= 0, words >= 0, words <= 1 << 26, SharedMemory.holds(frame, count: (Batch.headerWords + words) * 8) else { return nil }
        self.frame = frame
        var cursor = Batch.headerWords
        let end = Batch.headerWords + words
        for _ in 0..<count {
            guard cursor < end else { return nil }
            let arguments = Int(truncatingIfNeeded: frame[cursor] & ~Batch.internalFlag)
            guard arguments > 0, arguments <= (end - cursor - 1) / 2 else { return nil }
            for index in 0..<arguments {
                let address = UInt(truncatingIfNeeded: frame[cursor + 1 + 2 * index])
                let length = Int(truncatingIfNeeded: frame[cursor + 2 + 2 * index])
                guard let pointer = UnsafeRawPointer(bitPattern: address), SharedMemory.holds(pointer, count: length) else { return nil }
            }
            commands.append(cursor)
            cursor += 1 + 2 * arguments
        }
    }
}

/// One command of a batch: its arguments, in shared memory.
struct Command {
    let frame: UnsafeMutablePointer<UInt64>
    /// The word of its first argument's address.
    let start: Int
    let count: Int
    /// One of resp's own commands (queued, watch, unwatch, exec), which no client can send.
    let isInternal: Bool

    init(batch: Batch, index: Int) {
        frame = batch.frame
        start = batch.commands[index] + 1
        count = Int(truncatingIfNeeded: frame[start - 1] & ~Batch.internalFlag)
        isInternal = frame[start - 1] & Batch.internalFlag != 0
    }

    /// The command its arguments from `first` on make (`queued GET key` holds `GET key`).
    init(_ command: Command, droppingFirst first: Int) {
        frame = command.frame
        start = command.start + 2 * first
        count = command.count - first
        isInternal = false
    }

    subscript(index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: UnsafePointer(bitPattern: UInt(frame[start + 2 * index])),
                            count: Int(frame[start + 1 + 2 * index]))
    }

    /// Argument `index` copied into this compartment's memory.
    func bytes(_ index: Int) -> [UInt8] { Array(self[index]) }

    func isArgument(_ index: Int, _ word: StaticString) -> Bool {
        let bytes = self[index]
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        for position in 0..<bytes.count where bytes[position] | 0x20 != word.utf8Start[position] | 0x20 { return false }
        return true
    }
}

/// The replies of a batch, as records resp formats (see resp's ReplyFormatter.swift), each
/// command's preceded by its length, written into the frame's reply buffer; a larger
/// buffer comes from the shared heap when needed.
struct Reply {
    private let frame: UnsafeMutablePointer<UInt64>
    private var base: UnsafeMutablePointer<UInt8>?
    private var capacity: Int
    private var length = 0
    private var failed = false
    /// Where the current command's reply (its length word) starts.
    private var commandStart = 0

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
        guard let target = grow(toHold: count) else { failed = true; return nil }
        return target
    }

    /// Whether `count` more bytes of reply records fit, making room for them now: what a
    /// command that changes data asks before it changes anything, so that a reply that
    /// cannot be sent never costs the data it would have carried.
    mutating func makeRoom(for count: Int) -> Bool { !failed && grow(toHold: count) != nil }

    private mutating func grow(toHold count: Int) -> UnsafeMutablePointer<UInt8>? {
        if let base, count <= capacity - length { return base + length }
        guard let grown = SharedMemory.grownCapacity(max(capacity, 4096), used: length, more: count),
              let bigger = SharedMemory.allocate(UInt8.self, count: grown) else { return nil }
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

    /// Bytes of records that answer a bulk string of `length` bytes.
    static func bulkBytes(_ length: Int) -> Int { 9 + length }
    /// Bytes of an array record's header.
    static let arrayBytes = 9

    mutating func null() {
        guard let target = reserve(1) else { return }
        target[0] = UInt8(ascii: "_")
        length += 1
    }

    mutating func array(_ count: Int) { record(UInt8(ascii: "*"), count) }

    mutating func nullArray() { array(-1) }

    // What RESP3 tells apart and RESP2 does not: resp writes each as the client's protocol
    // asks (ReplyFormatter.swift), so the store answers alike for both.

    /// A map of `count` key-value pairs (HGETALL, CONFIG GET): the pairs' records follow.
    mutating func map(_ count: Int) { record(UInt8(ascii: "%"), count) }

    /// A set of `count` members (SMEMBERS, SINTER, SPOP with a count).
    mutating func set(_ count: Int) { record(UInt8(ascii: "~"), count) }

    /// `count` pairs (WITHSCORES, WITHVALUES): one flat array in RESP2, an array of
    /// two-element arrays in RESP3; each pair's two records follow.
    mutating func pairs(_ count: Int) { record(UInt8(ascii: "P"), count) }

    /// A score: a bulk string in RESP2, a double in RESP3; the same text (DoubleText).
    mutating func score(_ value: Double) { score(text: DoubleText.text(value)) }

    /// A score already written out.
    mutating func score(text: [UInt8]) { text.withUnsafeBufferPointer { record(UInt8(ascii: ","), $0.count, bytes: $0) } }

    /// Text for a person (INFO): a bulk string in RESP2, a verbatim string in RESP3.
    mutating func verbatim(_ text: [UInt8]) {
        text.withUnsafeBufferPointer { record(UInt8(ascii: "="), $0.count, bytes: $0) }
    }

    /// Nothing to answer yet: resp holds the client until a try of the command again
    /// answers, or `milliseconds` (0: no limit) pass (BlockingCommands.swift).
    mutating func blocked(milliseconds: Int) { record(UInt8(ascii: "B"), milliseconds) }

    mutating func ok() { simple("OK") }

    /// Starts the next command's reply.
    mutating func begin() {
        commandStart = length
        guard reserve(8) != nil else { return }
        length += 8
    }

    /// Ends the command's reply: writes its length. One that could not be written becomes
    /// an -OOM error.
    mutating func end() {
        if failed {
            failed = false
            length = commandStart
            begin()
            error("OOM the shared heap cannot hold this reply")
            // Not even that fits: resp answers this command and the rest as malformed.
            if failed { length = commandStart; return }
        }
        guard let base, length >= commandStart + 8, length <= capacity else { return }
        UnsafeMutableRawPointer(base + commandStart).storeBytes(of: Int64(length - commandStart - 8), as: Int64.self)
    }

    /// Whether the reply of the command running now is an error (so it changed nothing).
    var isError: Bool {
        guard let base, !failed, length > commandStart + 8 else { return failed }
        return base[commandStart + 8] == UInt8(ascii: "-")
    }

    /// Publishes the length of every reply written.
    func finish() { frame[3] = UInt64(length) }
}
