import Foundation
import Kernels

/// The clocks and inputs `brickyard bench-engine`'s subcommands share.
enum BenchTiming {
    /// Which clock a benchmark reads: the wall clock, or CPU seconds of this thread or of this process (on a
    /// shared machine the wall clock measures the load as much as the work).
    enum Clock {
        case wall, thread, process

        var now: Double {
            var time = timespec()
            switch self {
            case .wall: clock_gettime(CLOCK_MONOTONIC, &time)
            case .thread: clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            case .process: clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
            }
            return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
        }
    }

    /// Seconds of `clock` spent in `body`.
    static func seconds(_ clock: Clock = .wall, _ body: () throws -> Void) rethrows -> Double {
        let start = clock.now
        try body()
        return clock.now - start
    }

    /// `count` Gaussian values (standard deviation `scale`) from `DeterministicRandom(seed:)`.
    static func gaussian(_ count: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var random = DeterministicRandom(seed: seed)
        return (0..<count).map { _ in Float(random.nextGaussian() * scale) }
    }
}
