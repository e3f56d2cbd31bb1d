import FlexOS

/// Unix time, for the commands that speak it (TIME, EXPIREAT, EXPIRETIME, SET and GETEX's
/// EXAT and PXAT): the host's wall clock, read once through a hypercall and then kept by
/// the time-stamp counter. Keys expire on `Clock.milliseconds`, which counts from the host's
/// boot; these convert between the two.
enum WallClock {
    /// Unix nanoseconds minus `Clock.nanoseconds`, measured at the first use. Where the
    /// engine knows no wall clock the offset is 0: unix time is then time since boot.
    nonisolated(unsafe) private static var offset: UInt64?

    static var nanoseconds: UInt64 { Clock.nanoseconds &+ measuredOffset }

    /// On `Clock.milliseconds`, plus the offset in whole milliseconds, so that a unix time
    /// turned into an expiry and back is the same number.
    static var milliseconds: Int { Int(Clock.milliseconds) &+ offsetMilliseconds }

    private static var offsetMilliseconds: Int { Int(measuredOffset / 1_000_000) }

    private static var measuredOffset: UInt64 {
        if let offset { return offset }
        let before = Clock.nanoseconds
        let unix = Hypercalls.unixNanoseconds()
        let after = Clock.nanoseconds
        let measured = unix.map { $0 &- (before / 2 + after / 2) } ?? 0
        offset = measured
        return measured
    }

    /// The expiry (on `Clock.milliseconds`) of unix time `unix` in milliseconds: 1, long
    /// past, for any time before now; Int.max for one too far ahead to count.
    static func expiry(ofUnix unix: Int) -> Int {
        let (when, overflow) = unix.subtractingReportingOverflow(offsetMilliseconds)
        return overflow ? (unix < 0 ? 1 : Int.max) : max(when, 1)
    }

    /// The unix time in milliseconds of expiry `expiresAt`.
    static func unix(ofExpiry expiresAt: UInt64) -> Int { Int(truncatingIfNeeded: expiresAt) &+ offsetMilliseconds }
}

extension Commands {
    /// TIME: the unix time as two bulk strings, seconds and microseconds.
    static func time(_ c: Command, _ r: inout Reply) {
        let now = WallClock.nanoseconds
        r.array(2)
        r.bulk(Numbers.text(Int(now / 1_000_000_000)))
        r.bulk(Numbers.text(Int(now % 1_000_000_000 / 1000)))
    }

    /// EXPIRETIME and PEXPIRETIME: when the key expires, in unix seconds or milliseconds;
    /// -1 without an expiry, -2 without the key.
    static func expiretime(_ c: Command, unit: Int, _ r: inout Reply) {
        guard let entry = Keyspace.live(c.bytes(1)) else { return r.integer(-2) }
        guard entry.expiresAt != 0 else { return r.integer(-1) }
        r.integer(WallClock.unix(ofExpiry: entry.expiresAt) / unit)
    }

    /// Redis's error for a time that is not positive or overflows, naming the command.
    static func invalidExpireTime(_ c: Command) -> [UInt8] {
        bytes("ERR invalid expire time in '") + lowercased(c[0]) + bytes("' command")
    }

    /// An expiry option of SET and GETEX, as Redis 7.0 reads them.
    enum ExpiryOption {
        case keep, persist
        /// EX, PX (relative: milliseconds per unit), EXAT, PXAT (absolute).
        case time(argument: Int, unit: Int, absolute: Bool)
    }

    /// Reads EX, PX, EXAT, PXAT (with their argument), KEEPTTL (SET) and PERSIST (GETEX) at
    /// `index`: the option and the index after it, nil when the word is none of them. Two of
    /// them are a syntax error, but for the same one again (EX 10 EX 20: the last holds).
    static func expiryOption(_ c: Command, at index: Int, after earlier: ExpiryOption?, set: Bool)
        -> (option: ExpiryOption, next: Int)?
    {
        let timed: [(StaticString, Int, Bool)] = [("ex", 1000, false), ("px", 1, false), ("exat", 1000, true), ("pxat", 1, true)]
        for (word, unit, absolute) in timed where c.isArgument(index, word) && index + 1 < c.count {
            if let earlier {
                guard case .time(_, unit, absolute) = earlier else { return nil }
            }
            return (.time(argument: index + 1, unit: unit, absolute: absolute), index + 2)
        }
        guard earlier == nil else { return nil }
        if set && c.isArgument(index, "keepttl") { return (.keep, index + 1) }
        if !set && c.isArgument(index, "persist") { return (.persist, index + 1) }
        return nil
    }

    /// The expiry (on `Clock.milliseconds`) an EX, PX, EXAT or PXAT option asks for, or nil
    /// with Redis's error replied.
    static func expiry(of option: ExpiryOption, _ c: Command, _ r: inout Reply) -> UInt64? {
        guard case .time(let argument, let unit, let absolute) = option else { return nil }
        guard let amount = Numbers.integer(c[argument]) else {
            r.error(notInteger)
            return nil
        }
        guard amount > 0, amount <= Int.max / unit else {
            r.error(invalidExpireTime(c))
            return nil
        }
        let milliseconds = amount * unit
        if absolute { return UInt64(WallClock.expiry(ofUnix: milliseconds)) }
        let (when, late) = Int(Clock.milliseconds).addingReportingOverflow(milliseconds)
        guard !late else {
            r.error(invalidExpireTime(c))
            return nil
        }
        return UInt64(when)
    }

    /// GETEX key [EX seconds | PX ms | EXAT unix-seconds | PXAT unix-ms | PERSIST]: the value,
    /// with its expiry set or removed; a time already past removes the key (after answering it).
    static func getex(_ c: Command, _ r: inout Reply) {
        var option: ExpiryOption?
        var index = 2
        while index < c.count {
            guard let (parsed, next) = expiryOption(c, at: index, after: option, set: false) else {
                return r.error("ERR syntax error")
            }
            (option, index) = (parsed, next)
        }
        let key = c.bytes(1)
        guard let entry = Keyspace.live(key) else { return r.null() }
        guard case .string(let value) = entry.value else { return r.error(wrongType) }
        // Redis looks the key up before it reads the time: a missing key answers null even for a bad one.
        var expiresAt: UInt64?
        if let option, case .time = option {
            guard let when = expiry(of: option, c, &r) else { return }
            expiresAt = when
        }
        r.bulk(value)
        if let expiresAt {
            if expiresAt <= Clock.milliseconds {
                Keyspace.entries[key] = nil
            } else {
                Keyspace.entries[key]?.expiresAt = expiresAt
            }
        } else if case .persist? = option {
            Keyspace.entries[key]?.expiresAt = 0
        }
    }
}
