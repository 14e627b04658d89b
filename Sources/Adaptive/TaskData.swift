import Foundation

/// One example of a task: a prompt and its completion, or a chat (`messages`, rendered by the evaluator with the
/// tokenizer's chat template; the loss is on the last assistant message).
public struct TaskExample: Sendable, Equatable, Codable {
    public var prompt: String
    public var completion: String
    /// Canonical JSON of the `messages` array (empty for prompt/completion examples).
    public var messagesJSON: String
    /// Where it came from, for messages and reports.
    public var file: String
    public var line: Int

    public init(prompt: String = "", completion: String = "", messagesJSON: String = "", file: String = "", line: Int = 0) {
        self.prompt = prompt; self.completion = completion; self.messagesJSON = messagesJSON
        self.file = file; self.line = line
    }
}

/// JSONL task files: one JSON object per line, `{"prompt": …, "completion": …}` or
/// `{"messages": [{"role": …, "content": …}, …]}`. Blank lines are skipped; anything else that is not one of
/// those shapes is an error naming the file and line.
public enum TaskData {
    public static func load(path: String) throws -> [TaskExample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdaptError("\(path): cannot read the data file (missing or unreadable)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw AdaptError("\(path): not UTF-8") }
        var examples: [TaskExample] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            examples.append(try parse(line, file: path, line: index + 1))
        }
        guard !examples.isEmpty else { throw AdaptError("\(path): no examples") }
        return examples
    }

    static func parse(_ line: String, file: String, line number: Int) throws -> TaskExample {
        let place = "\(file):\(number)"
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        } catch {
            throw AdaptError("\(place): not valid JSON")
        }
        guard let fields = object as? [String: Any] else { throw AdaptError("\(place): expected a JSON object") }
        if let messages = fields["messages"] {
            guard fields["prompt"] == nil, fields["completion"] == nil else {
                throw AdaptError("\(place): give either messages or prompt + completion, not both")
            }
            guard let list = messages as? [[String: Any]], !list.isEmpty else {
                throw AdaptError("\(place): messages must be a non-empty array of {\"role\", \"content\"} objects")
            }
            var clean: [[String: String]] = []
            for (index, message) in list.enumerated() {
                guard let role = message["role"] as? String, let content = message["content"] as? String else {
                    throw AdaptError("\(place): messages[\(index)] needs string role and content")
                }
                clean.append(["role": role, "content": content])
            }
            guard clean.last?["role"] == "assistant" else {
                throw AdaptError("\(place): the last message must be the assistant's (its tokens are what the loss counts)")
            }
            let json = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys, .withoutEscapingSlashes])
            return TaskExample(messagesJSON: String(decoding: json, as: UTF8.self), file: file, line: number)
        }
        guard let prompt = fields["prompt"] as? String else {
            throw AdaptError("\(place): needs a string \"prompt\" and \"completion\" (or \"messages\")")
        }
        guard let completion = fields["completion"] as? String, !completion.isEmpty else {
            throw AdaptError("\(place): needs a non-empty string \"completion\"")
        }
        return TaskExample(prompt: prompt, completion: completion, file: file, line: number)
    }

    /// Train and validation examples: two files, or one file split by the job seed (`fraction` held out, at least
    /// one example each side). The split is a seeded shuffle, so it never depends on the machine.
    public static func split(_ spec: AdaptDataSpec, seed: UInt64) throws -> (train: [TaskExample], validation: [TaskExample]) {
        let train = try load(path: spec.train)
        if let validation = spec.validation { return (train, try load(path: validation)) }
        guard train.count >= 2 else {
            throw AdaptError("\(spec.train): \(train.count) example; need at least 2 to hold out validation examples (or give data.validation)")
        }
        let held = min(train.count - 1, max(1, Int((Double(train.count) * spec.validationFraction).rounded())))
        let order = SeededShuffle.permutation(count: train.count, seed: seed, stream: 0x5EED_DA7A)
        let validationIndices = Set(order.prefix(held))
        return (train.indices.filter { !validationIndices.contains($0) }.map { train[$0] },
                train.indices.filter { validationIndices.contains($0) }.map { train[$0] })
    }
}
