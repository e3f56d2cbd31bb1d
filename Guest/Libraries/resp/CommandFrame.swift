import FlexOS

/// A command on its way to the application, in shared memory (the application may live in
/// another compartment). Words:
///   [0] argument count   [1] reply buffer address   [2] reply buffer capacity
///   [3] reply length (written by the application)
///   [4 + 2i], [5 + 2i]   address and length of argument i (in the connection's input)
/// The application writes its reply as records into the reply buffer; it may replace the
/// buffer with a larger one from the shared heap (and free the old one).
struct CommandFrame {
    static let headerWords = 4
    private(set) var words: UnsafeMutablePointer<UInt64>
    private(set) var argumentCapacity: Int

    init?() {
        argumentCapacity = 64
        guard let words = SharedMemory.allocate(UInt64.self, count: CommandFrame.headerWords + 2 * 64),
              let reply = SharedMemory.allocate(UInt8.self, count: 4096) else { return nil }
        self.words = words
        words[1] = UInt64(UInt(bitPattern: reply))
        words[2] = 4096
    }

    /// Makes room for `count` arguments; false when the shared heap cannot.
    mutating func reserve(arguments count: Int) -> Bool {
        guard count > argumentCapacity else { return true }
        var capacity = argumentCapacity
        while capacity < count { capacity *= 2 }
        guard let grown = SharedMemory.allocate(UInt64.self, count: CommandFrame.headerWords + 2 * capacity) else { return false }
        grown.update(from: words, count: CommandFrame.headerWords)
        SharedMemory.deallocate(words)
        words = grown
        argumentCapacity = capacity
        return true
    }

    func set(argument index: Int, _ bytes: UnsafePointer<UInt8>, count: Int) {
        words[CommandFrame.headerWords + 2 * index] = UInt64(UInt(bitPattern: bytes))
        words[CommandFrame.headerWords + 2 * index + 1] = UInt64(count)
    }

    func argument(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: UnsafePointer(bitPattern: UInt(words[CommandFrame.headerWords + 2 * index])),
                            count: Int(words[CommandFrame.headerWords + 2 * index + 1]))
    }

    var argumentCount: Int {
        get { Int(words[0]) }
        nonmutating set { words[0] = UInt64(newValue) }
    }

    /// The reply the application wrote: records (see ReplyFormatter).
    var reply: UnsafeBufferPointer<UInt8>? {
        let length = Int(truncatingIfNeeded: words[3]), capacity = Int(truncatingIfNeeded: words[2])
        guard let start = UnsafePointer<UInt8>(bitPattern: UInt(words[1])), length >= 0, length <= capacity,
              SharedMemory.holds(start, count: capacity) else { return nil }
        return UnsafeBufferPointer(start: start, count: length)
    }

    func clearReply() { words[3] = 0 }
}
