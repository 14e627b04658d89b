import Foundation
import MergeEngine
import Yams

extension AdaptJob {
    /// Reads an adapt job file: a merge job's `adapters` (and `seed`) plus `base_model`, `data` and `adapt:`.
    /// Every error names the file and the key.
    public static func load(path: String) throws -> AdaptJob {
        let source = try JobFileSource(path: path)
        var job = try parse(yaml: source.text, baseDirectory: source.baseDirectory, fileName: source.absolutePath)
        job.pool.sourcePath = source.absolutePath
        return job
    }

    public static func parse(yaml: String, baseDirectory: String, fileName: String = "job file") throws -> AdaptJob {
        let root = try JobFileParser.compose(yaml: yaml, fileName: fileName)
        let parser = JobFileParser(file: fileName, baseDirectory: baseDirectory)
        let pool = try parser.job(root, extraKeys: ["base_model", "data", "adapt"], defaultMethod: .cat)
        let fields = try parser.mapping(root, key: "", allowed: nil)
        guard let baseNode = fields["base_model"] else { throw parser.fail("base_model", "is required (a local model directory)") }
        let baseModel = parser.resolve(try parser.string(baseNode, key: "base_model"))
        try BaseModelCheck.directory(baseModel, file: fileName)
        guard let dataNode = fields["data"] else { throw parser.fail("data", "is required (a JSONL file, or {train, validation})") }
        let data = try AdaptSectionParser(parser: parser).data(dataNode)
        let adapt = try fields["adapt"].map { try AdaptSectionParser(parser: parser).adapt($0) } ?? AdaptSpec()
        return AdaptJob(pool: pool, baseModel: baseModel, data: data, adapt: adapt)
    }
}

/// Reads the `data` and `adapt` sections with the merge job parser's typed readers.
struct AdaptSectionParser {
    let parser: JobFileParser

    func data(_ node: Node) throws -> AdaptDataSpec {
        if case .scalar = node {
            return AdaptDataSpec(train: try existingFile(node, key: "data"))
        }
        let fields = try parser.mapping(node, key: "data", allowed: ["train", "validation", "validation_fraction"])
        guard let train = fields["train"] else { throw parser.fail("data.train", "is required") }
        var spec = AdaptDataSpec(train: try existingFile(train, key: "data.train"))
        if let validation = fields["validation"] { spec.validation = try existingFile(validation, key: "data.validation") }
        if let fraction = fields["validation_fraction"] {
            let value = try parser.number(fraction, key: "data.validation_fraction")
            guard value > 0, value < 1 else { throw parser.fail("data.validation_fraction", "must be in (0, 1), got \(value)") }
            guard spec.validation == nil else { throw parser.fail("data.validation_fraction", "has no meaning with data.validation") }
            spec.validationFraction = value
        }
        return spec
    }

    private func existingFile(_ node: Node, key: String) throws -> String {
        let path = parser.resolve(try parser.string(node, key: key))
        guard FileManager.default.fileExists(atPath: path) else { throw parser.fail(key, "\(path) does not exist") }
        return path
    }

    func adapt(_ node: Node) throws -> AdaptSpec {
        let fields = try parser.mapping(node, key: "adapt", allowed: [
            "select", "coefficients", "activation", "init", "optimizer", "lr", "steps", "batch_size", "validate_every",
            "l1", "bounds", "weight_decay", "examples_per_request", "output",
        ])
        let optimizer: OptimizerName = try fields["optimizer"].map { try choice($0, key: "adapt.optimizer") } ?? .adamw
        var spec = optimizer.isGradientFree ? AdaptSpec.gradientFreeDefaults(optimizer) : AdaptSpec()
        if let node = fields["select"] { spec.select = try select(node) }
        if let node = fields["coefficients"] { spec.coefficients = try choice(node, key: "adapt.coefficients") }
        if let node = fields["activation"] { spec.activation = try choice(node, key: "adapt.activation") }
        if let node = fields["init"] { spec.initialValue = try finite(node, key: "adapt.init") }
        if let node = fields["lr"] {
            spec.learningRate = try finite(node, key: "adapt.lr")
            guard spec.learningRate > 0 else { throw parser.fail("adapt.lr", "must be positive") }
        }
        if let node = fields["steps"] { spec.steps = try positive(node, key: "adapt.steps") }
        if let node = fields["batch_size"] { spec.batchSize = try positive(node, key: "adapt.batch_size") }
        if let node = fields["validate_every"] { spec.validateEvery = try positive(node, key: "adapt.validate_every") }
        if let node = fields["examples_per_request"] { spec.examplesPerRequest = try positive(node, key: "adapt.examples_per_request") }
        if let node = fields["l1"] {
            spec.l1 = try finite(node, key: "adapt.l1")
            guard spec.l1 >= 0 else { throw parser.fail("adapt.l1", "must be ≥ 0") }
        }
        if let node = fields["bounds"] {
            spec.bound = try finite(node, key: "adapt.bounds")
            guard spec.bound > 0 else { throw parser.fail("adapt.bounds", "must be positive (the box is ±bounds)") }
        }
        if let node = fields["weight_decay"] {
            spec.weightDecay = try finite(node, key: "adapt.weight_decay")
            guard spec.weightDecay >= 0 else { throw parser.fail("adapt.weight_decay", "must be ≥ 0") }
        }
        if let node = fields["output"] { spec.output = try output(node) }
        return spec
    }

    private func select(_ node: Node) throws -> SelectionSpec {
        let fields = try parser.mapping(node, key: "adapt.select", allowed: ["by", "top_k", "target"])
        var spec = SelectionSpec()
        if let node = fields["by"] { spec.by = try choice(node, key: "adapt.select.by") }
        if let node = fields["top_k"] { spec.topK = try positive(node, key: "adapt.select.top_k") }
        if let node = fields["target"] {
            let path = parser.resolve(try parser.string(node, key: "adapt.select.target"))
            guard FileManager.default.fileExists(atPath: path) else { throw parser.fail("adapt.select.target", "\(path) does not exist") }
            spec.target = path
        }
        if spec.by == .similarity && spec.target == nil {
            throw parser.fail("adapt.select.target", "is required with by: similarity (the adapter to compare ΔW with)")
        }
        if spec.by != .none && spec.topK == nil {
            throw parser.fail("adapt.select.top_k", "is required with by: \(spec.by.rawValue)")
        }
        return spec
    }

    private func output(_ node: Node) throws -> AdaptOutputSpec {
        let fields = try parser.mapping(node, key: "adapt.output", allowed: ["method", "rank"])
        var spec = AdaptOutputSpec()
        if let node = fields["method"] {
            let name = try parser.string(node, key: "adapt.output.method")
            guard let method = MergeMethodName(rawValue: name), [.cat, .svd, .lego].contains(method) else {
                throw parser.fail("adapt.output.method", "unknown output method '\(name)' (expected cat, svd or lego)")
            }
            spec.method = method
        }
        if let node = fields["rank"] { spec.rank = try positive(node, key: "adapt.output.rank") }
        if spec.rank != nil && spec.method == .cat {
            throw parser.fail("adapt.output.rank", "cat keeps every rank (Σ r_i); set method: svd or lego to compress")
        }
        return spec
    }

    private func choice<T: RawRepresentable & CaseIterable>(_ node: Node, key: String) throws -> T where T.RawValue == String {
        let name = try parser.string(node, key: key)
        guard let value = T(rawValue: name) else {
            throw parser.fail(key, "unknown value '\(name)' (expected \(T.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return value
    }

    private func positive(_ node: Node, key: String) throws -> Int {
        let value = try parser.integer(node, key: key)
        guard value >= 1 else { throw parser.fail(key, "must be at least 1, got \(value)") }
        return value
    }

    private func finite(_ node: Node, key: String) throws -> Double {
        let value = try parser.number(node, key: key)
        guard value.isFinite else { throw parser.fail(key, "must be a finite number") }
        return value
    }
}
