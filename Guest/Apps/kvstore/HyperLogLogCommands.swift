/// PFADD, PFCOUNT and PFMERGE over HyperLogLog strings (HyperLogLog.swift), as Redis 7.0
/// answers them. PFCOUNT of one key caches its count in the string, a change Redis makes
/// too (so it touches a WATCH when the cache was stale).
extension Commands {
    static let notHyperLogLog: StaticString = "WRONGTYPE Key is not a valid HyperLogLog string value."
    static let corruptedHyperLogLog: StaticString = "INVALIDOBJ Corrupted HLL object detected"

    /// PFADD key [element ...]: 1 when a register grew (or the key was made), else 0.
    static func pfadd(_ c: Command, _ r: inout Reply) {
        let key = c.bytes(1)
        guard let found = hyperLogLog(key, &r), hasRoomForHyperLogLog(&r) else { return }
        var log = found ?? HyperLogLog()
        var updated = found == nil
        for index in 2..<c.count {
            guard let grew = log.add(c[index]) else { return r.error(corruptedHyperLogLog) }
            updated = updated || grew
        }
        if updated {
            log.invalidateCache()
            store(log, under: key)
        }
        r.integer(updated ? 1 : 0)
    }

    /// PFCOUNT key [key ...]: one key's estimate (cached in it), or the estimate of the
    /// union of several.
    static func pfcount(_ c: Command, _ r: inout Reply) {
        guard c.count == 2 else {
            guard let (maximum, _) = unionOfRegisters(c, from: 1, &r) else { return }
            return r.integer(Int(truncatingIfNeeded: HyperLogLog.estimate(maximum)))
        }
        let key = c.bytes(1)
        guard let found = hyperLogLog(key, &r) else { return }
        guard var log = found else { return r.integer(0) }
        if let cached = log.cachedCount { return r.integer(Int(truncatingIfNeeded: cached)) }
        guard let values = log.registerValues else { return r.error(corruptedHyperLogLog) }
        let count = HyperLogLog.estimate(values)
        log.cache(count)
        store(log, under: key)
        r.integer(Int(truncatingIfNeeded: count))
    }

    /// PFMERGE destination [source ...]: the union (of the destination too) into the
    /// destination, dense when any of them was.
    static func pfmerge(_ c: Command, _ r: inout Reply) {
        guard let (maximum, anyDense) = unionOfRegisters(c, from: 1, &r), hasRoomForHyperLogLog(&r) else { return }
        let key = c.bytes(1)
        var target = HyperLogLog()
        if case .string(let text)? = Keyspace.live(key)?.value, let existing = HyperLogLog(text) { target = existing }
        if anyDense && !target.makeDense() { return r.error(corruptedHyperLogLog) }
        for (index, value) in maximum.enumerated() where value != 0 { _ = target.set(index, atLeast: value) }
        target.invalidateCache()
        store(target, under: key)
        r.ok()
    }

    /// The HyperLogLog under `key`: `.some(nil)` when there is none, nil (with the error
    /// replied) when the key holds anything else.
    private static func hyperLogLog(_ key: [UInt8], _ r: inout Reply) -> HyperLogLog?? {
        guard let entry = Keyspace.live(key) else { return .some(nil) }
        guard case .string(let text) = entry.value else {
            r.error(wrongType)
            return nil
        }
        guard let log = HyperLogLog(text) else {
            r.error(notHyperLogLog)
            return nil
        }
        return .some(log)
    }

    /// Each register's largest value among the keys from argument `first` on (a missing key
    /// is empty), and whether any was dense; nil with the error replied.
    private static func unionOfRegisters(_ c: Command, from first: Int, _ r: inout Reply) -> ([UInt8], Bool)? {
        var maximum = [UInt8](repeating: 0, count: HyperLogLog.registers), anyDense = false
        for index in first..<c.count {
            guard let found = hyperLogLog(c.bytes(index), &r) else { return nil }
            guard let log = found else { continue }
            guard let values = log.registerValues else {
                r.error(corruptedHyperLogLog)
                return nil
            }
            anyDense = anyDense || log.isDense
            for (register, value) in values.enumerated() where value > maximum[register] { maximum[register] = value }
        }
        return (maximum, anyDense)
    }

    /// Room for a dense HyperLogLog, the most one may take; -OOM replied when there is none.
    private static func hasRoomForHyperLogLog(_ r: inout Reply) -> Bool {
        let bytes = MemoryCost.bytes(HyperLogLog.denseBytes)
        guard Keyspace.hasRoom(for: bytes, growth: MemoryCost.Pieces(bytes)) else {
            r.error(outOfMemory)
            return false
        }
        return true
    }

    /// A string Redis made as raw (OBJECT ENCODING), its expiry kept.
    private static func store(_ log: HyperLogLog, under key: [UInt8]) {
        Keyspace.entries[key] = Entry(value: .string(log.bytes), hint: .raw, expiresAt: Keyspace.live(key)?.expiresAt ?? 0)
    }
}
