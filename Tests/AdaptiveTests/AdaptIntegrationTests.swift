import BrickyardTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let teacherPool = AdaptEnvironment.teacherAdapters.map { "pool/p\($0)" }
/// AdamW on one weight per adapter of the teacher's adapters (a small, well-posed planted problem).
private let adamwSection = "  coefficients: per_adapter\n  lr: 0.1\n  steps: 60\n  batch_size: 16\n  validate_every: 10"

/// Real processes: `brickyard adapt` / `eval` with real Python evaluators over ZeroMQ on a tiny random Llama.
/// Skipped (with the reason printed) only when the evaluator venv is absent.
@Suite("adapt and eval with real evaluators", .serialized, .enabled(if: AdaptEnvironment.available))
struct AdaptIntegrationTests {
    /// The reference run (1 evaluator), shared by the byte-identity tests.
    static let reference: Result<(job: String, out: String), Error> = Result {
        let fixture = try AdaptEnvironment.fixture.get()
        // Kept for the whole run: the byte-identity tests compare against it (scripts/test's scratch TMPDIR goes at exit).
        let directory = try AdaptEnvironment.temporary("reference")
        let job = try AdaptEnvironment.job(in: directory, fixture: fixture, adapters: teacherPool, adapt: adamwSection)
        let run = try AdaptEnvironment.brickyard(["adapt", job, "--out", directory + "/out", "--evaluators", "1", "--quiet"])
        guard run.status == 0 else { throw AdaptTestError("reference adapt failed (\(run.status)): \(run.stderr)") }
        return (job, directory + "/out")
    }

    @Test("planted mixture: AdamW brings validation loss within 5% of the teacher's; the output loads in PEFT with the evaluator's logits")
    func plantedAdamW() throws {
        let (_, out) = try Self.reference.get()
        let teacher = try AdaptEnvironment.teacherLoss.get()
        let learned = try AdaptEnvironment.learnedLoss(out)
        #expect(learned <= 1.05 * teacher, "learned \(learned) vs teacher \(teacher)")
        let report = try AdaptEnvironment.report(out)
        let scores = try #require(report["scores"] as? [String: [String: Any]])
        let base = try #require(scores["base"]?["loss"] as? Double)
        #expect(learned < base)
        let fixture = try AdaptEnvironment.fixture.get()
        let check = try AdaptEnvironment.runProgram(AdaptEnvironment.python, [
            AdaptEnvironment.repository + "/scripts/adapt_check_output.py", fixture + "/base", out, fixture + "/validation.jsonl"])
        #expect(check.status == 0, "PEFT vs on-the-fly logits: \(check.output)")
        #expect(FileManager.default.fileExists(atPath: out + "/coefficients.png"))
        #expect(!FileManager.default.fileExists(atPath: out + ".adapt-checkpoint"), "checkpoint removed after success")
    }

    @Test("the same job gives identical bytes with 1 and 3 evaluators")
    func threeEvaluators() throws {
        let (job, out) = try Self.reference.get()
        let directory = try AdaptEnvironment.temporary("three")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try AdaptEnvironment.brickyard(["adapt", job, "--out", directory + "/out", "--evaluators", "3", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        #expect(try AdaptEnvironment.outputFingerprint(directory + "/out") == AdaptEnvironment.outputFingerprint(out))
    }

    @Test("SIGKILL the coordinator mid-run, rerun: it resumes from the last step and writes identical bytes")
    func killCoordinator() throws {
        let (job, out) = try Self.reference.get()
        let directory = try AdaptEnvironment.temporary("killc")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/out"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(BrickyardExecutable.path))
        process.arguments = ["adapt", job, "--out", target, "--evaluators", "1", "--quiet"]
        process.environment = ProcessInfo.processInfo.environment.merging(["BRICKYARD_EVALUATOR": AdaptEnvironment.evaluator]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let reached = AdaptEnvironment.waitForStep(20, checkpoint: target + ".adapt-checkpoint", process: process)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try #require(reached, "the run never reached step 20")
        #expect(!FileManager.default.fileExists(atPath: target), "no output from a killed run")
        let rerun = try AdaptEnvironment.brickyard(["adapt", job, "--out", target, "--evaluators", "1", "--log-level", "notice"])
        try #require(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming from checkpoint"))
        #expect(try AdaptEnvironment.outputFingerprint(target) == AdaptEnvironment.outputFingerprint(out))
    }

    @Test("SIGKILL an evaluator mid-run: the job finishes with identical bytes")
    func killEvaluator() throws {
        let (job, out) = try Self.reference.get()
        let directory = try AdaptEnvironment.temporary("kille")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/out"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(BrickyardExecutable.path))
        process.arguments = ["adapt", job, "--out", target, "--evaluators", "2", "--quiet"]
        process.environment = ProcessInfo.processInfo.environment.merging(["BRICKYARD_EVALUATOR": AdaptEnvironment.evaluator]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let reached = AdaptEnvironment.waitForStep(10, checkpoint: target + ".adapt-checkpoint", process: process)
        let evaluators = AdaptEnvironment.children(of: process.processIdentifier)
        if reached, let victim = evaluators.first { kill(victim, SIGKILL) }
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(reached && !evaluators.isEmpty, "no evaluator to kill (step reached: \(reached))")
        try #require(process.terminationStatus == 0, "\(stderr)")
        #expect(try AdaptEnvironment.outputFingerprint(target) == AdaptEnvironment.outputFingerprint(out))
    }

    @Test("planted mixture: CMA-ES on per-adapter weights (LoraHub defaults) comes within 5% of the teacher")
    func plantedCMAES() throws {
        let fixture = try AdaptEnvironment.fixture.get()
        let directory = try AdaptEnvironment.temporary("cma")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let job = try AdaptEnvironment.job(in: directory, fixture: fixture, adapters: teacherPool, adapt: "  optimizer: cma_es\n  steps: 100")
        let run = try AdaptEnvironment.brickyard(["adapt", job, "--out", directory + "/out", "--evaluators", "2", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        let teacher = try AdaptEnvironment.teacherLoss.get()
        let learned = try AdaptEnvironment.learnedLoss(directory + "/out")
        #expect(learned <= 1.05 * teacher, "learned \(learned) vs teacher \(teacher)")
        let report = try AdaptEnvironment.report(directory + "/out")
        let runtime = try #require(report["runtime"] as? [String: Any])
        let evaluations = try #require(runtime["evaluations"] as? Int)
        #expect(evaluations >= 100 && evaluations < 120)
    }

    @Test("top-k by loss from a pool of 8 picks the teacher's adapters")
    func topK() throws {
        let fixture = try AdaptEnvironment.fixture.get()
        let directory = try AdaptEnvironment.temporary("topk")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pool = (0..<8).map { "pool/p\($0)" }
        let job = try AdaptEnvironment.job(in: directory, fixture: fixture, adapters: pool,
                                           adapt: "  select: {by: loss, top_k: 4}\n  coefficients: per_adapter\n  steps: 2")
        let run = try AdaptEnvironment.brickyard(["adapt", job, "--out", directory + "/out", "--evaluators", "2", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        let entries = try #require(try AdaptEnvironment.report(directory + "/out")["pool"] as? [[String: Any]])
        let selected = entries.enumerated().filter { ($0.element["selected"] as? Bool) == true }.map(\.offset)
        #expect(selected == AdaptEnvironment.teacherAdapters)
        #expect(entries.allSatisfy { $0["score"] is Double })
        #expect(run.stdout.contains("4 of 8 (loss)"))
    }

    @Test("--bind serves a remote evaluator (started by hand); selection by similarity keeps the target's nearest adapters")
    func remoteEvaluatorAndSimilarity() throws {
        let fixture = try AdaptEnvironment.fixture.get()
        let directory = try AdaptEnvironment.temporary("remote")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pool = (0..<8).map { "pool/p\($0)" }
        let job = try AdaptEnvironment.job(in: directory, fixture: fixture, adapters: pool,
                                           adapt: "  select: {by: similarity, top_k: 2, target: \(fixture)/pool/p3}\n  steps: 3")
        let coordinator = Process()
        coordinator.executableURL = URL(fileURLWithPath: try #require(BrickyardExecutable.path))
        coordinator.arguments = ["adapt", job, "--out", directory + "/out", "--bind", "tcp://127.0.0.1:*", "--evaluators", "0",
                                 "--endpoint-file", directory + "/endpoint", "--quiet"]
        let errors = Pipe()
        coordinator.standardOutput = FileHandle.nullDevice
        coordinator.standardError = errors
        try coordinator.run()
        var endpoint = ""
        let deadline = Date().addingTimeInterval(120)
        while endpoint.isEmpty && Date() < deadline && coordinator.isRunning {
            endpoint = ((try? String(contentsOfFile: directory + "/endpoint", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            Thread.sleep(forTimeInterval: 0.05)
        }
        try #require(!endpoint.isEmpty, "no endpoint file")
        let evaluator = Process()
        evaluator.executableURL = URL(fileURLWithPath: AdaptEnvironment.evaluator)
        evaluator.arguments = ["--connect", endpoint, "--threads", "1"]
        evaluator.environment = ProcessInfo.processInfo.environment.merging(["OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"]) { $1 }
        evaluator.standardOutput = FileHandle.nullDevice
        evaluator.standardError = FileHandle.nullDevice
        try evaluator.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        coordinator.waitUntilExit()
        evaluator.waitUntilExit()
        try #require(coordinator.terminationStatus == 0, "\(stderr)")
        #expect(evaluator.terminationStatus == 0, "a dismissed evaluator exits 0")
        let entries = try #require(try AdaptEnvironment.report(directory + "/out")["pool"] as? [[String: Any]])
        let scores = entries.map { ($0["score"] as? Double) ?? -2 }
        #expect(abs(scores[3] - 1) < 1e-6, "the target is its own nearest adapter: \(scores)")
        let selected = entries.enumerated().filter { ($0.element["selected"] as? Bool) == true }.map(\.offset)
        #expect(selected.contains(3) && selected.count == 2)
    }

    @Test("brickyard eval scores the base and adapters as a table and as JSON")
    func evalCommand() throws {
        let fixture = try AdaptEnvironment.fixture.get()
        let run = try AdaptEnvironment.brickyard(["eval", "--base-model", fixture + "/base", "--data", fixture + "/validation.jsonl",
                                                 "--adapter", fixture + "/pool/p1", "--adapter", fixture + "/pool/p2",
                                                 "--evaluators", "2", "--quiet"])
        try #require(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 4 && lines[0].hasPrefix("variant") && lines[1].hasPrefix("base"))
        #expect(run.stdout.contains("%"))
    }

    @Test("bad input: one clear error each, nothing written", arguments: [
        "missing base model", "missing tokenizer", "adapter does not fit the base", "bad data line", "evaluator of another protocol version",
    ])
    func badInput(kind: String) throws {
        let fixture = try AdaptEnvironment.fixture.get()
        let directory = try AdaptEnvironment.temporary("bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var adapters = ["pool/p1", "pool/p3"]
        var extra: [String] = []
        var data: String?
        var expected: String
        var jobText = "  steps: 2"
        switch kind {
        case "missing base model":
            try FileManager.default.createDirectory(atPath: directory + "/nobase", withIntermediateDirectories: true)
            expected = "base_model: "
        case "missing tokenizer":
            expected = "has no tokenizer"
        case "adapter does not fit the base":
            adapters.append("foreign")
            expected = "but the base layer"
        case "bad data line":
            let lines = try String(contentsOfFile: fixture + "/data.jsonl", encoding: .utf8).split(separator: "\n")
            try (lines.prefix(2).joined(separator: "\n") + "\n{\"prompt\": \"x\"}\n" + lines.dropFirst(2).joined(separator: "\n"))
                .write(toFile: directory + "/bad.jsonl", atomically: true, encoding: .utf8)
            data = directory + "/bad.jsonl"
            expected = "bad.jsonl:3: "
        default:
            extra = ["--evaluator-arg=--protocol-version", "--evaluator-arg=99"]
            expected = "protocol version 99 is not supported"
            jobText = "  steps: 1"
        }
        var job = try AdaptEnvironment.job(in: directory, fixture: fixture, adapters: adapters, adapt: jobText, data: data)
        if kind == "missing base model" || kind == "missing tokenizer" {
            var text = try String(contentsOfFile: job, encoding: .utf8)
            if kind == "missing tokenizer" {
                let copy = directory + "/base-no-tokenizer"
                try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
                for name in ["config.json", "model.safetensors"] {
                    try FileManager.default.copyItem(atPath: fixture + "/base/" + name, toPath: copy + "/" + name)
                }
                text = text.replacingOccurrences(of: "base_model: \(fixture)/base", with: "base_model: \(copy)")
            } else {
                text = text.replacingOccurrences(of: "base_model: \(fixture)/base", with: "base_model: \(directory)/nobase")
            }
            job = directory + "/job2.yaml"
            try text.write(toFile: job, atomically: true, encoding: .utf8)
        }
        let run = try AdaptEnvironment.brickyard(["adapt", job, "--out", directory + "/out", "--evaluators", "1", "--quiet"] + extra)
        #expect(run.status != 0)
        let errorLines = run.stderr.split(separator: "\n").filter { $0.hasPrefix("brickyard: ") }
        #expect(errorLines.count == 1, "\(run.stderr)")
        #expect(errorLines.first?.contains(expected) == true, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/out"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/out.adapt-checkpoint"))
    }
}
