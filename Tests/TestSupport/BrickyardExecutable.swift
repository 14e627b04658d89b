import Foundation
import Kernels

/// The `brickyard` binary built with the tests, run as a user would: shared by every test target that checks
/// exit statuses, output streams and what a command leaves on disk.
public enum BrickyardExecutable {
    /// Why the binary could not be run.
    public struct NotBuilt: Error, CustomStringConvertible {
        public var description: String { "brickyard is not built next to the tests (run swift build --build-tests)" }
    }

    /// What one run produced.
    public typealias Run = CapturedRun

    /// Products sit next to the test bundle in .build/<triple>/debug/; .build/debug/ is the fallback.
    public static let path: String? = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            URL(fileURLWithPath: executable).deletingLastPathComponent(),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
            root.appendingPathComponent(".build/debug"),
        ]
        shareKernels()
        return candidates.map { $0.appendingPathComponent("brickyard").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Every `brickyard` this test process starts (directly, through scripts, Slurm or a local worker pool) uses
    /// the test process's own OpenBLAS kernels, so bytes merged in-process here and in those processes compare
    /// equal (`BLASCore`); without it `brickyard` would re-execute itself with better kernels than a generic
    /// choice of the test process's OpenBLAS. A no-op when `OPENBLAS_CORETYPE` is already set. Runs once, the first
    /// time a test needs the binary (glibc's first setenv copies the environment array and frees nothing, so
    /// concurrent readers stay safe).
    private static func shareKernels() {
        for (key, value) in BLASCore.childEnvironment where ProcessInfo.processInfo.environment[key] == nil {
            setenv(key, value, 0)
        }
    }

    /// Runs the binary to completion (`CapturedRun.run`).
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Run {
        guard let path else { throw NotBuilt() }
        return try CapturedRun.run(path, arguments, environment: environment ?? [:])
    }
}
