import Foundation
import Glibc

/// CLOCK_MONOTONIC in nanoseconds: the clock flexosd reports its timestamps in.
func monotonicNow() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// One finished child process: when it was spawned, when it was reaped, what it printed.
struct SpawnResult {
    let spawnedAt: UInt64
    let reapedAt: UInt64
    let status: Int32
    let output: Data
}

/// Spawns `arguments` with posix_spawn and waits for it. Standard error is discarded, or
/// read together with standard output.
func spawnAndWait(_ arguments: [String], errorsToOutput: Bool = false) throws -> SpawnResult {
    var pipe: [Int32] = [0, 0]
    guard Glibc.pipe(&pipe) == 0 else { throw BenchError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
    if errorsToOutput {
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    posix_spawn_file_actions_addclose(&actions, pipe[0])
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawnedAt = monotonicNow()
    guard posix_spawn(&pid, arguments[0], &actions, nil, argv, environ) == 0 else {
        throw BenchError("cannot spawn \(arguments[0])")
    }
    close(pipe[1])
    let output = FileHandle(fileDescriptor: pipe[0], closeOnDealloc: true).readDataToEndOfFile()
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return SpawnResult(spawnedAt: spawnedAt, reapedAt: monotonicNow(), status: (status >> 8) & 0xFF, output: output)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

func milliseconds(_ nanoseconds: Double) -> String { String(format: "%.2f ms", nanoseconds / 1e6) }
