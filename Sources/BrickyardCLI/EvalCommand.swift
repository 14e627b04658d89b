import Adaptive
import ArgumentParser
import Coordinator
import Foundation

/// `brickyard eval`: loss, perplexity and accuracy of the base model alone and with each given adapter.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score adapters (inputs or merged outputs) and the base model on a JSONL dataset.")

    @Option(name: .customLong("base-model"), help: "The base model directory (config.json, weights, tokenizer).")
    var baseModel: String

    @Option(name: .long, help: "JSONL data: {\"prompt\", \"completion\"} or {\"messages\": [...]} per line.")
    var data: String

    @Option(name: .customLong("adapter"), help: "A PEFT adapter directory to score (repeatable).")
    var adapters: [String] = []

    @Flag(name: .customLong("no-base"), help: "Do not score the base model alone.")
    var noBase = false

    @Flag(name: .customLong("no-accuracy"), help: "Losses only (no greedy decoding).")
    var noAccuracy = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .customLong("examples-per-request"), help: "Examples per evaluator request (the unit of sharding).")
    var examplesPerRequest = 4

    @Flag(name: .long, help: "Log only warnings and errors.")
    var quiet = false

    @OptionGroup var evaluatorOptions: EvaluatorOptions

    func validate() throws {
        guard examplesPerRequest >= 1 else { throw ValidationError("--examples-per-request must be at least 1") }
        guard !noBase || !adapters.isEmpty else { throw ValidationError("nothing to score: give --adapter or drop --no-base") }
    }

    func run() throws {
        do {
            let examples = try TaskData.load(path: data)
            let logger = evaluatorOptions.makeLogger(label: "brickyard.eval", quiet: quiet)
            let stop = StopSignal()
            stop.install()
            let variants = (noBase ? [] : [EvalVariant(name: "base", adapter: nil)])
                + adapters.map { EvalVariant(name: $0, adapter: URL(fileURLWithPath: $0).standardizedFileURL.path) }
            let results = try EvalCoordinator.run(baseModel: baseModel, examples: examples, variants: variants, accuracy: !noAccuracy,
                                                  examplesPerRequest: examplesPerRequest, runtime: evaluatorOptions.runtime(),
                                                  logger: logger, stop: stop)
            if json {
                let rows: [[String: Any]] = results.map { result in
                    var row: [String: Any] = ["name": result.variant.name, "loss": result.score.loss,
                                              "perplexity": result.score.perplexity, "tokens": result.score.tokens,
                                              "examples": result.score.examples]
                    row["adapter"] = result.variant.adapter ?? NSNull()
                    row["accuracy"] = result.score.accuracy ?? NSNull()
                    return row
                }
                let object: [String: Any] = ["base_model": baseModel, "data": data, "results": rows]
                let bytes = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: bytes, as: UTF8.self))
            } else {
                let width = max(8, results.map(\.variant.name.count).max() ?? 0)
                print("variant".padding(toLength: width, withPad: " ", startingAt: 0) + "  loss      perplexity  accuracy  tokens")
                for result in results {
                    let accuracy = result.score.accuracy.map { String(format: "%6.1f%%", 100 * $0) } ?? "      -"
                    print(result.variant.name.padding(toLength: width, withPad: " ", startingAt: 0)
                          + String(format: "  %-8.4f  %-10.4f  ", result.score.loss, result.score.perplexity) + accuracy + "   \(result.score.tokens)")
                }
            }
        } catch {
            StandardError.write("brickyard: \(error)\n")
            throw ExitCode(RuntimeExitCode.code(for: error))
        }
    }
}
