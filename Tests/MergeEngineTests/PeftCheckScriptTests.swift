import BrickyardTestSupport
import Foundation
import Testing
@testable import MergeEngine

/// scripts/peft-check's static part applies PEFT's own pattern-key regex (Python `re`) to the written config, an
/// independent check of the rank_pattern keys. Skipped when python3 is absent.
@Suite struct PeftCheckScriptTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: python != nil, "python3 not installed"))
    func mixedRankOutputPassesPeftsPatternRules() throws {
        let scratch = try TestDirectory("peft-check")
        let out = scratch.file("merged")
        // cat of every fixture: modules missing from some adapters end up with different ranks (rank_pattern).
        try LocalMerge.run(plan: Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"])),
                           outputDirectory: out)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.python))
        process.arguments = [Self.root.appendingPathComponent("scripts/peft-check").path, out]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("static check ok: 10 modules"), "\(output)")
    }
}
