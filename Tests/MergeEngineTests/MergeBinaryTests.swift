import Foundation
import Testing
import BrickyardTestSupport

/// Runs the built `brickyard merge` as a user would: exit status, streams, and what is left on disk.
@Suite struct MergeBinaryTests {
    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let run = try BrickyardExecutable.run(arguments)
        #expect(run.reason == .exit)
        return (run.status, run.stdout, run.stderr)
    }

    static func job(_ scratch: TestDirectory, _ body: String) throws -> String {
        let path = scratch.file("job.yaml")
        let adapters = "adapters:\n  - path: \(PeftTinyFixtures.adapter("a_r8"))\n  - path: \(PeftTinyFixtures.adapter("b_r4"))\n"
        try (body + adapters).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func goodJobWritesTheAdapterAndPrintsASummary() throws {
        let scratch = try TestDirectory("cli-good")
        let out = scratch.file("merged")
        let result = try Self.run(["merge", try Self.job(scratch, "method: ties\nrank: 4\n"), "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ties") && result.stdout.contains("relative error"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted()
                == ["adapter_config.json", "adapter_model.safetensors", "merge-report.json"])
    }

    @Test(arguments: [
        ("method: ties\nparameters:\n  density: 2\n", "parameters.density"),
        ("method: lego\nparameters:\n  colour: red\n", "parameters.colour"),
        ("method: merge_everything\n", "method"),
    ])
    func badJobExitsOneWithOneLineAndWritesNothing(body: String, key: String) throws {
        let scratch = try TestDirectory("cli-bad")
        let out = scratch.file("merged")
        let jobPath = try Self.job(scratch, body)
        let result = try Self.run(["merge", jobPath, "--out", out])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("brickyard: \(jobPath): \(key)"), "\(result.stderr)")
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["job.yaml"])
    }

    /// A bad count of workers or threads is a bad command line (64, the usage error naming the option), refused
    /// before the job file is even read; `merge --help` lists the exit codes.
    @Test(arguments: [(["--workers", "0"], "--workers must be at least 1, got 0"),
                      (["--threads", "0"], "--threads must be at least 1, got 0")])
    func badCountsAreCommandLineErrors(extra: [String], message: String) throws {
        let scratch = try TestDirectory("cli-counts")
        let out = scratch.file("merged")
        let result = try Self.run(["merge", scratch.file("missing.yaml"), "--out", out] + extra)
        #expect(result.status == 64)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let help = try Self.run(["merge", "--help"])
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")  // help wraps lines
        #expect(help.status == 0 && text.contains("Exit codes: 0 done") && text.contains("65 --checkpoint belongs"))
    }
}
