import FlexOS

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN], as Redis 7.0 computes it: the
/// table of common-prefix lengths (O(n·m) time and 4·n·m bytes, refused when the heap has no
/// room for it), walked back from the ends; the same tie rule, so the same subsequence and
/// the same ranges as redis-server.
extension Commands {
    static func lcs(_ c: Command, _ r: inout Reply) {
        var strings: [[UInt8]] = []
        for index in 1...2 {
            switch Keyspace.live(c.bytes(index))?.value {
            case nil: strings.append([])
            case .string(let value)?: strings.append(value)
            default: return r.error("ERR The specified keys must contain string values")
            }
        }
        var wantsIndexes = false, wantsLength = false, withMatchLength = false, minimumMatch = 0
        var index = 3
        while index < c.count {
            if c.isArgument(index, "idx") { wantsIndexes = true }
            else if c.isArgument(index, "len") { wantsLength = true }
            else if c.isArgument(index, "withmatchlen") { withMatchLength = true }
            else if c.isArgument(index, "minmatchlen") && index + 1 < c.count {
                guard let value = Numbers.integer(c[index + 1]) else { return r.error(notInteger) }
                minimumMatch = max(value, 0)
                index += 1
            } else {
                return r.error("ERR syntax error")
            }
            index += 1
        }
        if wantsIndexes && wantsLength {
            return r.error("ERR If you want both the length and indexes, please just use IDX.")
        }
        let a = strings[0], b = strings[1]
        let cells = (a.count + 1).multipliedReportingOverflow(by: b.count + 1)
        let bytes = cells.partialValue.multipliedReportingOverflow(by: 4)
        guard !cells.overflow, !bytes.overflow, PrivateHeap.canAllocate(bytes.partialValue, then: a.count) else {
            return r.error("ERR Insufficient memory, failed allocating transient memory for LCS")
        }
        let width = b.count + 1
        var table = [UInt32](repeating: 0, count: cells.partialValue)
        for i in 1..<(a.count + 1) {
            for j in 1..<width {
                table[i * width + j] =
                    a[i - 1] == b[j - 1]
                    ? table[(i - 1) * width + j - 1] + 1 : max(table[(i - 1) * width + j], table[i * width + j - 1])
            }
        }
        let length = Int(table[a.count * width + b.count])
        if wantsLength { return r.integer(length) }
        let (subsequence, matches) = walkBack(a, b, table: table, width: width, length: length, minimumMatch: minimumMatch)
        guard wantsIndexes else { return r.bulk(subsequence) }
        r.map(2)
        r.bulk("matches")
        r.array(matches.count)
        for match in matches {
            r.array(withMatchLength ? 3 : 2)
            r.array(2)
            r.integer(match.a.lowerBound)
            r.integer(match.a.upperBound)
            r.array(2)
            r.integer(match.b.lowerBound)
            r.integer(match.b.upperBound)
            if withMatchLength { r.integer(match.a.count) }
        }
        r.bulk("len")
        r.integer(length)
    }

    /// The subsequence and its matching ranges (inclusive, last first), read back from the
    /// table's end as Redis reads it: on a tie the walk leaves b's byte, and a range ends
    /// where the match stops being contiguous (the byte that broke it starts no new one).
    private static func walkBack(
        _ a: [UInt8], _ b: [UInt8], table: [UInt32], width: Int, length: Int, minimumMatch: Int
    ) -> ([UInt8], [(a: ClosedRange<Int>, b: ClosedRange<Int>)]) {
        var subsequence = [UInt8](repeating: 0, count: length)
        var matches: [(a: ClosedRange<Int>, b: ClosedRange<Int>)] = []
        var remaining = length, i = a.count, j = b.count
        // The range being grown backwards; nil between ranges.
        var range: (aStart: Int, aEnd: Int, bStart: Int, bEnd: Int)?
        while i > 0 && j > 0 {
            var emit = false
            if a[i - 1] == b[j - 1] {
                subsequence[remaining - 1] = a[i - 1]
                if let current = range {
                    if current.aStart == i && current.bStart == j {
                        range = (current.aStart - 1, current.aEnd, current.bStart - 1, current.bEnd)
                    } else {
                        emit = true
                    }
                } else {
                    range = (i - 1, i - 1, j - 1, j - 1)
                }
                if let current = range, current.aStart == 0 || current.bStart == 0 { emit = true }
                remaining -= 1
                i -= 1
                j -= 1
            } else {
                if table[(i - 1) * width + j] > table[i * width + j - 1] { i -= 1 } else { j -= 1 }
                if range != nil { emit = true }
            }
            if emit, let current = range {
                if minimumMatch == 0 || current.aEnd - current.aStart + 1 >= minimumMatch {
                    matches.append((current.aStart...current.aEnd, current.bStart...current.bEnd))
                }
                range = nil
            }
        }
        return (subsequence, matches)
    }
}
