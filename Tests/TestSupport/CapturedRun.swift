import Foundation

/// What a program run to completion produced.
public struct CapturedRun: Sendable {
    public var status: Int32
    public var reason: Process.TerminationReason
    public var stdout: String
    public var stderr: String

    /// Runs `executable ARGUMENTS` with the test process's environment plus `environment`. Both pipes are drained
    /// concurrently before waiting, so a child that fills one pipe while the other is read never blocks.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CapturedRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stderrData = StderrBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            stderrData.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return CapturedRun(status: process.terminationStatus, reason: process.terminationReason,
                           stdout: String(decoding: stdoutData, as: UTF8.self),
                           stderr: String(decoding: stderrData.data, as: UTF8.self))
    }

    /// Holds the bytes read on another thread; the group's wait orders the write before the read.
    private final class StderrBox: @unchecked Sendable { var data = Data() }
}

/// Polls `condition` every `interval` seconds until it holds or `timeout` passes; returns its last value.
public func eventually(timeout: Duration = .seconds(30), interval: Double = 0.02, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    }
    return condition()
}
