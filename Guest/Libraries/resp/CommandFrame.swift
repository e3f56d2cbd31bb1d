import FlexOS

/// A batch of commands on its way to the application, in shared memory (the application
/// may live in another compartment): one gate crossing carries every command the clients
/// sent in one turn of the event loop. Words:
///   [0] command count   [1] reply buffer address   [2] reply buffer capacity
///   [3] reply length (written by the application)   [4] words of commands that follow
///   [5...] per command: its argument count n, then n times (address, length) of an
///          argument in its connection's input buffer; bit 63 of the count marks resp's own
///          internal commands (Transactions.swift), which no client can send
/// The application writes, per command in order, an 8-byte length and that many bytes of
/// reply records (ReplyFormatter.swift); it may replace the reply buffer with a larger one
/// from the shared heap (and free the old one).
struct CommandFrame {
    static let headerWords = 5
    private(set) var words: UnsafeMutablePointer<UInt64>
    private var capacity: Int
    private var used = 0

    static let initialWords = 1024
    static let initialReplyBytes = 16 << 10

    init?() {
        capacity = CommandFrame.initialWords
        guard let words = SharedMemory.allocate(UInt64.self, count: CommandFrame.headerWords + CommandFrame.initialWords),
              let reply = SharedMemory.allocate(UInt8.self, count: CommandFrame.initialReplyBytes) else { return nil }
        self.words = words
        words[1] = UInt64(UInt(bitPattern: reply))
        words[2] = UInt64(CommandFrame.initialReplyBytes)
        reset()
    }

    /// Gives a frame or reply buffer that a large batch grew back to the shared heap,
    /// between turns (nothing is in them then).
    mutating func shrinkIfLarge() {
        if capacity > 4 * CommandFrame.initialWords, let smaller = SharedMemory.allocate(UInt64.self, count: CommandFrame.headerWords + CommandFrame.initialWords) {
            smaller.update(from: words, count: CommandFrame.headerWords)
            SharedMemory.deallocate(words)
            words = smaller
            capacity = CommandFrame.initialWords
        }
        // The application may have put a larger reply buffer in the frame.
        let replyBytes = Int(truncatingIfNeeded: words[2])
        if replyBytes > 4 * CommandFrame.initialReplyBytes, let reply = UnsafeMutablePointer<UInt8>(bitPattern: UInt(words[1])),
           SharedMemory.holds(reply, count: replyBytes), let smaller = SharedMemory.allocate(UInt8.self, count: CommandFrame.initialReplyBytes) {
            SharedMemory.deallocate(reply)
            words[1] = UInt64(UInt(bitPattern: smaller))
            words[2] = UInt64(CommandFrame.initialReplyBytes)
        }
        reset()
    }

    var count: Int { Int(words[0]) }

    mutating func reset() {
        words[0] = 0
        words[3] = 0
        words[4] = 0
        used = 0
    }

    /// Adds a command whose arguments are `arguments` (offset, length) from `base`; false
    /// when the shared heap cannot hold the frame.
    mutating func add(_ arguments: [(Int, Int)], base: UnsafePointer<UInt8>) -> Bool {
        add(count: arguments.count, isInternal: false) { (base + arguments[$0].0, arguments[$0].1) }
    }

    /// Adds a command whose arguments lie at `arguments` (address, length); `isInternal`: one
    /// of resp's own commands (Transactions.swift).
    mutating func add(_ arguments: [(UnsafePointer<UInt8>, Int)], isInternal: Bool) -> Bool {
        add(count: arguments.count, isInternal: isInternal) { arguments[$0] }
    }

    private mutating func add(count: Int, isInternal: Bool, argument: (Int) -> (UnsafePointer<UInt8>, Int)) -> Bool {
        let need = 1 + 2 * count
        guard reserve(used + need) else { return false }
        var cursor = CommandFrame.headerWords + used
        words[cursor] = UInt64(count) | (isInternal ? CommandFrame.internalFlag : 0)
        cursor += 1
        for index in 0..<count {
            let (address, length) = argument(index)
            words[cursor] = UInt64(UInt(bitPattern: address))
            words[cursor + 1] = UInt64(length)
            cursor += 2
        }
        used += need
        words[4] = UInt64(used)
        words[0] += 1
        return true
    }

    static let internalFlag: UInt64 = 1 << 63

    /// Where the frame ends now, to roll back to.
    var mark: (count: UInt64, used: Int) { (words[0], used) }

    /// Drops the commands added since `mark`.
    mutating func rollBack(to mark: (count: UInt64, used: Int)) {
        (words[0], used) = mark
        words[4] = UInt64(used)
    }

    private mutating func reserve(_ total: Int) -> Bool {
        guard total > capacity else { return true }
        var grown = capacity
        while grown < total { grown *= 2 }
        guard let bigger = SharedMemory.allocate(UInt64.self, count: CommandFrame.headerWords + grown) else { return false }
        bigger.update(from: words, count: CommandFrame.headerWords + used)
        SharedMemory.deallocate(words)
        words = bigger
        capacity = grown
        return true
    }

    /// The replies the application wrote, one after another, each with its length first;
    /// nil when the application left the frame in a state that cannot be read.
    var replies: UnsafeBufferPointer<UInt8>? {
        let length = Int(truncatingIfNeeded: words[3]), capacity = Int(truncatingIfNeeded: words[2])
        guard let start = UnsafePointer<UInt8>(bitPattern: UInt(words[1])), length >= 0, length <= capacity,
              SharedMemory.holds(start, count: capacity) else { return nil }
        return UnsafeBufferPointer(start: start, count: length)
    }
}

/// Reads the replies of a batch one command at a time.
struct ReplyCursor {
    let replies: UnsafeBufferPointer<UInt8>
    var position = 0

    /// The next command's reply records, or nil when the application wrote too few or a bad length.
    mutating func next() -> UnsafeBufferPointer<UInt8>? {
        guard let base = replies.baseAddress, position + 8 <= replies.count else { return nil }
        let length = Int(truncatingIfNeeded: UnsafeRawPointer(base + position).loadUnaligned(as: Int64.self))
        guard length >= 0, length <= replies.count - position - 8 else { return nil }
        defer { position += 8 + length }
        return UnsafeBufferPointer(rebasing: replies[(position + 8)..<(position + 8 + length)])
    }
}
