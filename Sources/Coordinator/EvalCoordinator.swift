import Adaptive
import AdapterIO
import Foundation
import Logging
import MergeEngine
import WireProtocol

/// One model variant `brickyard eval` scores: the base alone (no adapter) or the base with one PEFT adapter
/// (an input adapter or a merged output) at its own scaling.
public struct EvalVariant: Sendable {
    public var name: String
    public var adapter: String?
    public init(name: String, adapter: String?) { self.name = name; self.adapter = adapter }
}

/// `brickyard eval`: scores variants on a dataset over evaluators, sharded as (variant × batch of examples),
/// reduced per variant in request order.
public enum EvalCoordinator {
    public static func run(baseModel: String, examples: [TaskExample], variants: [EvalVariant], accuracy: Bool,
                           examplesPerRequest: Int, runtime: EvaluatorRuntimeOptions, logger: Logger,
                           stop: StopSignal) throws -> [(variant: EvalVariant, score: DatasetScore)] {
        try BaseModelCheck.directory(baseModel, file: "--base-model", key: "")
        var refs: [Wire.AdapterRef] = []
        var adapters: [LoadedAdapter] = []
        for variant in variants {
            guard let path = variant.adapter else { continue }
            adapters.append(LoadedAdapter(try PeftAdapter.load(path: path)))
            refs.append(try AdaptCoordinator.adapterRef(path))
        }
        try BaseModelCheck.adaptersFit(adapters, baseModel: baseModel)
        let wireExamples = examples.enumerated().map { index, example in
            Wire.Example(id: UInt32(index), prompt: example.prompt, completion: example.completion, messagesJSON: example.messagesJSON)
        }
        var jobs: [EvalJob] = []
        var ranges: [Range<Int>] = []
        var adapterIndex = 0
        for variant in variants {
            var indices: [Int] = []
            var modules: [String] = []
            if variant.adapter != nil {
                indices = [adapterIndex]
                modules = adapters[adapterIndex].modules.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                adapterIndex += 1
            }
            let shards = AnswerReduction.shards(Array(examples.indices), size: examplesPerRequest).map {
                EvalJob(mode: accuracy ? .lossAndAccuracy : .loss, adapters: indices, modules: modules, coefficients: [], exampleIDs: $0)
            }
            ranges.append(jobs.count..<(jobs.count + shards.count))
            jobs += shards
        }
        var hash = SHA256()
        hash.update("eval \(baseModel) \(examples.count) \(ProcessInfo.processInfo.processIdentifier)")
        let session = try EvaluatorSession(runtime: runtime, jobID: String(SHA256.hex(hash.finalize()).prefix(16)), baseModel: baseModel,
                                           examples: wireExamples, adapters: refs, logger: logger, stop: stop)
        let answers: [EvalAnswer]
        do {
            answers = try session.server.evaluate(jobs)
        } catch {
            session.close(reason: "eval failed")
            throw error
        }
        session.close(reason: "eval done")
        return zip(variants, ranges).map { variant, range in
            (variant, AnswerReduction.score(AnswerReduction.reduce(Array(answers[range]))))
        }
    }
}
