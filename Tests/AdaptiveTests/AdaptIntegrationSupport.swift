import BrickyardTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The evaluator venv and the planted-mixture fixture shared by the integration tests (built once per process by
/// scripts/adapt_fixtures.py with the venv's Python: a tiny random Llama, a pool of 8 random LoRAs, data whose
/// completions are greedy decodings of base + Σ λ*_i s_i B_i A_i for the teacher adapters 1, 3, 4, 6).
enum AdaptEnvironment {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let venv = (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.cache/brickyard/venv"
    static let python = venv + "/bin/python"
    static let evaluator = venv + "/bin/brickyard-evaluator"
    static let teacherAdapters = [1, 3, 4, 6]
    static let teacherLambdas = [0.9, 0.6, 0.8, 0.5]

    /// Why the integration tests cannot run here (printed), or nil.
    static let missing: String? = {
        let reason: String?
        if !FileManager.default.isExecutableFile(atPath: python) {
            reason = "\(python) is missing (run scripts/setup-python)"
        } else if !FileManager.default.isExecutableFile(atPath: evaluator) {
            reason = "\(evaluator) is missing (run scripts/setup-python)"
        } else if BrickyardExecutable.path == nil {
            reason = "brickyard is not built next to the tests"
        } else {
            reason = nil
        }
        if let reason { print("adapt integration tests skipped: \(reason)") }
        return reason
    }()

    static var available: Bool { missing == nil }

    /// The fixture directory (built on first use).
    static let fixture: Result<String, Error> = Result {
        let directory = NSTemporaryDirectory() + "brickyard-adapt-fixture-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        let run = try runProgram(python, [repository + "/scripts/adapt_fixtures.py", "planted", "--out", directory, "--pool", "8",
                                          "--teacher", teacherAdapters.map(String.init).joined(separator: ","),
                                          "--lambdas", teacherLambdas.map { "\($0)" }.joined(separator: ",")])
        guard run.status == 0 else { throw AdaptTestError("fixture script failed: \(run.output)") }
        return directory
    }

    /// Runs a program to completion with one thread for torch and BLAS; stdout then stderr in `output`.
    static func runProgram(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let threads = ["OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"]
        let run = try CapturedRun.run(program, arguments, environment: threads.merging(environment) { $1 })
        return (run.status, run.stdout + run.stderr)
    }

    /// `brickyard ARGS` to completion.
    static func brickyard(_ arguments: [String]) throws -> BrickyardExecutable.Run {
        try BrickyardExecutable.run(arguments, environment: ["OPENBLAS_NUM_THREADS": "1", "BRICKYARD_EVALUATOR": evaluator])
    }

    /// Writes an adapt job into `directory` (paths relative to the fixture).
    static func job(in directory: String, fixture: String, adapters: [String], adapt: String, name: String = "job.yaml",
                    data: String? = nil) throws -> String {
        let path = directory + "/" + name
        let list = adapters.map { "  - path: \(fixture)/\($0)" }.joined(separator: "\n")
        let dataLine = data ?? "{train: \(fixture)/data.jsonl, validation: \(fixture)/validation.jsonl}"
        try "base_model: \(fixture)/base\ndata: \(dataLine)\nseed: 7\nadapters:\n\(list)\nadapt:\n\(adapt)\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func temporary(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "adapt-it-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The bytes that must be identical between two runs of the same job: the adapter, the coefficients, the plot,
    /// and the report without its runtime figures.
    static func outputFingerprint(_ directory: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in ["adapter_model.safetensors", "adapter_config.json", "coefficients.json", "coefficients.png"] {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { throw AdaptTestError("\(directory)/\(name) missing") }
            result[name] = data
        }
        guard let report = FileManager.default.contents(atPath: directory + "/adapt-report.json"),
              var object = try JSONSerialization.jsonObject(with: report) as? [String: Any] else {
            throw AdaptTestError("\(directory)/adapt-report.json unreadable")
        }
        object["runtime"] = nil
        if let history = object["history"] as? [[String: Any]] {
            object["history"] = history.map { var entry = $0; entry["seconds"] = nil; return entry }
        }
        result["adapt-report.json"] = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return result
    }

    static func report(_ directory: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: directory + "/adapt-report.json"),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw AdaptTestError("no report in \(directory)") }
        return object
    }

    static func learnedLoss(_ directory: String) throws -> Double {
        let scores = try report(directory)["scores"] as? [String: [String: Any]]
        guard let loss = scores?["learned"]?["loss"] as? Double else { throw AdaptTestError("no learned loss in \(directory)") }
        return loss
    }

    /// Validation loss of the teacher (a CAT merge of the teacher adapters with weights λ*), by `brickyard eval`.
    static let teacherLoss: Result<Double, Error> = Result {
        let fixture = try AdaptEnvironment.fixture.get()
        let directory = try temporary("teacher")
        let list = zip(teacherAdapters, teacherLambdas).map { "  - {path: \(fixture)/pool/p\($0), weight: \($1)}" }.joined(separator: "\n")
        try "method: cat\nnormalize: false\nadapters:\n\(list)\n".write(toFile: directory + "/t.yaml", atomically: true, encoding: .utf8)
        let merge = try brickyard(["merge", directory + "/t.yaml", "--out", directory + "/teacher", "--quiet", "--in-process"])
        guard merge.status == 0 else { throw AdaptTestError("teacher merge failed: \(merge.stderr)") }
        let eval = try brickyard(["eval", "--base-model", fixture + "/base", "--data", fixture + "/validation.jsonl",
                                  "--adapter", directory + "/teacher", "--no-base", "--no-accuracy", "--json", "--quiet"])
        guard eval.status == 0, let object = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any],
              let results = object["results"] as? [[String: Any]], let loss = results.first?["loss"] as? Double else {
            throw AdaptTestError("teacher eval failed: \(eval.stderr) \(eval.stdout)")
        }
        return loss
    }

    /// Pids of the direct children of `pid` (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }

    /// Waits until the adapt checkpoint at `directory` reports at least `step` steps (or the process exits).
    static func waitForStep(_ step: Int, checkpoint directory: String, process: Process, timeout: Double = 300) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if let data = FileManager.default.contents(atPath: directory + "/state.json"),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let done = object["step"] as? Int, done >= step {
                return true
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}

struct AdaptTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
