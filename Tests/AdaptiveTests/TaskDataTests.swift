import Foundation
import MergeEngine
import Testing
@testable import Adaptive

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "adaptive-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Task data and adapt job files")
struct TaskDataTests {
    @Test("prompt/completion and chat lines load; blank lines are skipped")
    func loads() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/d.jsonl"
        try """
        {"prompt": "2 + 2 =", "completion": " 4"}

        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let examples = try TaskData.load(path: path)
        #expect(examples.count == 2)
        #expect(examples[0].prompt == "2 + 2 =" && examples[0].completion == " 4" && examples[0].line == 1)
        #expect(examples[1].messagesJSON == #"[{"content":"hi","role":"user"},{"content":"hello","role":"assistant"}]"#)
        #expect(examples[1].line == 3)
    }

    @Test("a bad line is an error naming the file and the line", arguments: [
        ("{\"prompt\": \"a\"}", "completion"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "assistant"),
        ("{\"messages\": [], \"prompt\": \"x\"}", "either"),
        ("{\"prompt\": 3, \"completion\": \"x\"}", "prompt"),
    ])
    func badLine(line: String, mentions: String) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/bad.jsonl"
        try "{\"prompt\": \"ok\", \"completion\": \"fine\"}\n\(line)\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try TaskData.load(path: path)
            Issue.record("loaded")
        } catch let error as AdaptError {
            #expect(error.message.hasPrefix("\(path):2: "), "\(error)")
            #expect(error.message.contains(mentions), "\(error)")
        }
    }

    @Test("the train/validation split is fixed by the seed and disjoint")
    func split() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/d.jsonl"
        try (0..<20).map { "{\"prompt\": \"p\($0)\", \"completion\": \"c\($0)\"}" }.joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let spec = AdaptDataSpec(train: path, validationFraction: 0.25)
        let a = try TaskData.split(spec, seed: 3), b = try TaskData.split(spec, seed: 3), c = try TaskData.split(spec, seed: 4)
        #expect(a.train == b.train && a.validation == b.validation)
        #expect(a.validation.count == 5 && a.train.count == 15)
        #expect(Set(a.train.map(\.prompt)).isDisjoint(with: a.validation.map(\.prompt)))
        #expect(a.validation != c.validation)
    }

    @Test("adapt job: defaults, LoraHub defaults for gradient-free, and errors naming file and key")
    func jobFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for sub in ["base", "pool/a"] { try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true) }
        for file in ["base/config.json", "base/tokenizer.json", "base/model.safetensors", "pool/a/adapter_config.json", "data.jsonl"] {
            FileManager.default.createFile(atPath: directory + "/" + file, contents: Data("{}".utf8))
        }
        let head = "base_model: base\ndata: data.jsonl\nadapters:\n  - path: pool/a\n"
        let plain = try AdaptJob.parse(yaml: head, baseDirectory: directory, fileName: "j.yaml")
        #expect(plain.adapt == AdaptSpec())
        #expect(plain.adapt.coefficients == .perModule && plain.adapt.activation == .leakyReLU && plain.adapt.learningRate == 0.05)
        #expect(plain.adapt.steps == 100 && plain.adapt.initialValue == 0 && plain.adapt.optimizer == .adamw)
        let hub = try AdaptJob.parse(yaml: head + "adapt: {optimizer: cma_es}\n", baseDirectory: directory, fileName: "j.yaml")
        #expect(hub.adapt.coefficients == .perAdapter && hub.adapt.bound == 1.5 && hub.adapt.l1 == 0.05 && hub.adapt.steps == 40)
        #expect(hub.adapt.activation == .linear)
        let cases: [(String, String)] = [
            (head + "adapt: {optimizer: sgd}\n", "j.yaml: adapt.optimizer: unknown value 'sgd'"),
            (head + "adapt: {select: {by: loss}}\n", "j.yaml: adapt.select.top_k: is required"),
            (head + "adapt: {select: {by: similarity, top_k: 2}}\n", "j.yaml: adapt.select.target: is required"),
            (head + "adapt: {lr: -1}\n", "j.yaml: adapt.lr: must be positive"),
            (head + "adapt: {output: {method: cat, rank: 4}}\n", "j.yaml: adapt.output.rank:"),
            (head + "adapt: {steps: 0}\n", "j.yaml: adapt.steps: must be at least 1"),
            (head + "adapt: {colour: red}\n", "j.yaml: adapt.colour: unknown key"),
            ("data: data.jsonl\nadapters:\n  - path: pool/a\n", "j.yaml: base_model: is required"),
            ("base_model: nowhere\ndata: data.jsonl\nadapters:\n  - path: pool/a\n", "j.yaml: base_model:"),
            ("base_model: base\ndata: missing.jsonl\nadapters:\n  - path: pool/a\n", "j.yaml: data:"),
        ]
        for (yaml, message) in cases {
            do {
                _ = try AdaptJob.parse(yaml: yaml, baseDirectory: directory, fileName: "j.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".hasPrefix(message), "\(error)")
            }
        }
        try FileManager.default.removeItem(atPath: directory + "/base/tokenizer.json")
        #expect(throws: JobFileError.self) { try AdaptJob.parse(yaml: head, baseDirectory: directory, fileName: "j.yaml") }
    }
}

/// `BaseModelCheck.directory` names where the path came from: a job file's `base_model` key, or `brickyard eval`'s
/// `--base-model` option alone (it read `--base-model: base_model: …`).
@Suite struct BaseModelCheckNamingTests {
    @Test func errorsNameTheJobKeyOrTheOption() throws {
        let missing = NSTemporaryDirectory() + "no-model-\(UUID().uuidString)"
        let job = #expect(throws: JobFileError.self) { try BaseModelCheck.directory(missing, file: "a.yaml") }
        #expect(job?.description == "a.yaml: base_model: \(missing) is not a directory")
        let option = #expect(throws: JobFileError.self) {
            try BaseModelCheck.directory(missing, file: "--base-model", key: "")
        }
        #expect(option?.description == "--base-model: \(missing) is not a directory")
    }
}
