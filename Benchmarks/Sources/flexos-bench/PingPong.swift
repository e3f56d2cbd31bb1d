import Glibc
import Synchronization

/// The physical limit of a cross-core call: two host threads passing a counter back and
/// forth through one cache line. Returns nanoseconds per round trip.
func hostPingPong(roundTrips: Int) -> Double {
    final class Line: @unchecked Sendable {
        let value = Atomic<Int>(0)
    }
    let line = Line()
    let responder = Thread {
        var expected = 1
        while expected < 2 * roundTrips {
            while line.value.load(ordering: .acquiring) != expected {}
            line.value.store(expected + 1, ordering: .releasing)
            expected += 2
        }
    }
    let started = monotonicNow()
    var next = 0
    for _ in 0..<roundTrips {
        line.value.store(next + 1, ordering: .releasing)
        while line.value.load(ordering: .acquiring) != next + 2 {}
        next += 2
    }
    let elapsed = monotonicNow() - started
    responder.join()
    return Double(elapsed) / Double(roundTrips)
}

/// A joinable pthread running a closure.
final class Thread {
    private var thread = pthread_t()

    init(_ body: @escaping () -> Void) {
        final class Box {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box)
    }

    func join() { pthread_join(thread, nil) }
}
