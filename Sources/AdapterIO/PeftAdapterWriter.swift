#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Shape of one module of an adapter being written.
public struct PeftOutputModule: Sendable, Hashable {
    /// Full module path as read from the inputs (it already starts with `base_model.model.`).
    public var name: String
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(name: String, rank: Int, inFeatures: Int, outFeatures: Int) {
        self.name = name
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }
}

/// What the written adapter_config.json says beyond the per-module ranks.
public struct PeftOutputConfig: Sendable, Equatable {
    public var baseModelNameOrPath: String?
    public var taskType: String?
    /// Written sorted; when empty, the modules' last name components are used.
    public var targetModules: [String]
    /// Stored element type of the factors (F32, F16 or BF16).
    public var dtype: DType
    /// Config `r`; nil picks the most common module rank (ties: the larger). Other ranks go to rank_pattern.
    public var rank: Int?
    public var fanInFanOut: Bool
    /// Extra `__metadata__` for the safetensors file (`format: pt` is always written).
    public var metadata: [String: String]
    /// Every module's alpha is this multiple of its rank. 1 (merged outputs) makes the scaling 1, so the stored
    /// B·A is the delta itself; synthetic pools use 2 like common training recipes.
    public var alphaPerRank: Int

    public init(baseModelNameOrPath: String? = nil, taskType: String? = nil, targetModules: [String] = [],
                dtype: DType = .f32, rank: Int? = nil, fanInFanOut: Bool = false, metadata: [String: String] = [:],
                alphaPerRank: Int = 1) {
        self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType
        self.targetModules = targetModules
        self.dtype = dtype
        self.rank = rank
        self.fanInFanOut = fanInFanOut
        self.metadata = metadata
        self.alphaPerRank = alphaPerRank
    }
}

/// Writes a PEFT adapter directory. By default the effective scaling is 1 for every module (lora_alpha = r,
/// and alpha_pattern mirrors rank_pattern), so the stored `B·A` is the delta itself.
///
/// Atomicity: everything is written into a temporary directory next to the destination, each file fsynced,
/// then the directory is renamed into place and the parent fsynced. A reader sees either no adapter or the
/// complete one. An existing destination is replaced only with `overwrite` (moved aside, then removed).
/// Like `SafetensorsWriter`, modules can be written one at a time in any order.
public final class PeftAdapterWriter {
    public let directory: String
    private let temporaryDirectory: String
    private let modules: [String: PeftOutputModule]
    private let tensors: SafetensorsWriter
    private let configJSON: Data
    private let overwrite: Bool
    private var finished = false

    public init(directory: String, modules: [PeftOutputModule], config: PeftOutputConfig, overwrite: Bool = false) throws {
        self.directory = directory
        self.overwrite = overwrite
        guard [.f32, .f16, .bf16].contains(config.dtype) else {
            throw AdapterIOError(.badArgument, path: directory, "output dtype must be F32, F16 or BF16, not \(config.dtype.rawValue)")
        }
        guard !modules.isEmpty else { throw AdapterIOError(.badArgument, path: directory, "no modules to write") }
        guard config.alphaPerRank >= 1 else { throw AdapterIOError(.badArgument, path: directory, "alphaPerRank must be at least 1") }
        if let bad = modules.first(where: { $0.rank < 1 || $0.inFeatures < 1 || $0.outFeatures < 1 }) {
            throw AdapterIOError(.badArgument, path: directory, "module \(bad.name): rank and features must be positive")
        }
        if !overwrite && FileManager.default.fileExists(atPath: directory) {
            throw AdapterIOError(.io, path: directory, "already exists (refusing to overwrite)")
        }
        var byName: [String: PeftOutputModule] = [:]
        for module in modules {
            guard byName.updateValue(module, forKey: module.name) == nil else {
                throw AdapterIOError(.badArgument, path: directory, "module \(module.name) given twice")
            }
        }
        self.modules = byName
        configJSON = try PeftConfigWriter.json(modules: modules, config: config, path: directory)

        temporaryDirectory = AtomicFile.temporaryPath(for: directory)
        guard mkdir(temporaryDirectory, 0o755) == 0 else {
            throw AdapterIOError(.io, path: temporaryDirectory, "cannot create directory: \(SystemError.text())")
        }
        let declarations = modules.flatMap { module in
            [TensorDeclaration(name: module.name + ".lora_A.weight", dtype: config.dtype, shape: [module.rank, module.inFeatures]),
             TensorDeclaration(name: module.name + ".lora_B.weight", dtype: config.dtype, shape: [module.outFeatures, module.rank])]
        }
        do {
            tensors = try SafetensorsWriter(path: temporaryDirectory + "/adapter_model.safetensors", tensors: declarations,
                                            metadata: config.metadata.merging(["format": "pt"]) { current, _ in current })
        } catch {
            try? FileManager.default.removeItem(atPath: temporaryDirectory)
            throw error
        }
    }

    deinit {
        if !finished { try? FileManager.default.removeItem(atPath: temporaryDirectory) }
    }

    /// Writes one module: A row-major [rank, in], B row-major [out, rank].
    public func write(module name: String, a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>) throws {
        guard modules[name] != nil else { throw AdapterIOError(.badArgument, path: directory, "module \(name) was not declared") }
        try tensors.write(name + ".lora_A.weight", a)
        try tensors.write(name + ".lora_B.weight", b)
    }

    public func write(module name: String, a: [Float], b: [Float]) throws {
        try a.withUnsafeBufferPointer { a in try b.withUnsafeBufferPointer { b in try write(module: name, a: a, b: b) } }
    }

    /// Writes the config, then moves the finished directory into place.
    public func finish() throws {
        guard !finished else { return }
        try tensors.finish()
        try AtomicFile.write(Array(configJSON), to: temporaryDirectory + "/adapter_config.json")
        try AtomicFile.syncDirectory(temporaryDirectory)
        var displaced: String?
        if FileManager.default.fileExists(atPath: directory) {
            guard overwrite else { throw AdapterIOError(.io, path: directory, "appeared while writing (refusing to overwrite)") }
            let aside = AtomicFile.temporaryPath(for: directory) + ".old"
            guard rename(directory, aside) == 0 else {
                throw AdapterIOError(.io, path: directory, "cannot move the existing directory aside: \(SystemError.text())")
            }
            displaced = aside
        }
        guard rename(temporaryDirectory, directory) == 0 else {
            throw AdapterIOError(.io, path: directory, "cannot rename into place: \(SystemError.text())")
        }
        finished = true
        try AtomicFile.syncDirectory(containing: directory)
        if let displaced { try? FileManager.default.removeItem(atPath: displaced) }
    }

    /// One-shot form for adapters that fit in memory.
    public static func write(directory: String, modules: [(module: PeftOutputModule, a: [Float], b: [Float])],
                             config: PeftOutputConfig, overwrite: Bool = false) throws {
        let writer = try PeftAdapterWriter(directory: directory, modules: modules.map(\.module), config: config, overwrite: overwrite)
        for entry in modules { try writer.write(module: entry.module.name, a: entry.a, b: entry.b) }
        try writer.finish()
    }
}

/// Builds adapter_config.json with the key set PEFT 0.21 writes (see Tests/Fixtures/peft-tiny).
enum PeftConfigWriter {
    static func json(modules: [PeftOutputModule], config: PeftOutputConfig, path: String) throws -> Data {
        let rank = config.rank ?? mostCommonRank(modules)
        var rankPattern: [String: Int] = [:]
        var alphaPattern: [String: Int] = [:]
        for module in modules where module.rank != rank {
            // PEFT matches pattern keys against names inside the base model, without the PeftModel wrapper.
            let key = PeftNames.strippingWrapperPrefix(module.name)
            rankPattern[key] = module.rank
            alphaPattern[key] = module.rank * config.alphaPerRank
        }
        let targets = config.targetModules.isEmpty ? Array(Set(modules.map { PeftNames.leaf($0.name) })) : config.targetModules
        let null = NSNull()
        let object: [String: Any] = [
            "alora_invocation_tokens": null, "alpha_pattern": alphaPattern, "arrow_config": null, "auto_mapping": null,
            "base_model_name_or_path": config.baseModelNameOrPath ?? null, "bias": "none", "corda_config": null,
            "ensure_weight_tying": false, "eva_config": null, "exclude_modules": null,
            "fan_in_fan_out": config.fanInFanOut, "inference_mode": true, "init_lora_weights": true, "kasa_config": null,
            "layer_replication": null, "layers_pattern": null, "layers_to_transform": null, "loftq_config": [String: Any](),
            "lora_alpha": rank * config.alphaPerRank, "lora_bias": false, "lora_dropout": 0.0, "lora_ga_config": null, "megatron_config": null,
            "megatron_core": "megatron.core", "modules_to_save": null, "monteclora_config": null, "peft_type": "LORA",
            "qalora_group_size": 16, "r": rank, "rank_pattern": rankPattern, "revision": null,
            "target_modules": Array(Set(targets)).sorted(), "target_parameters": null, "task_type": config.taskType ?? null,
            "trainable_token_indices": null, "use_bdlora": null, "use_dora": false, "use_qalora": false, "use_rslora": false,
            "velora_config": null,
        ]
        do {
            var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            data.append(0x0a)
            return data
        } catch {
            throw AdapterIOError(.badArgument, path: path, "cannot encode adapter_config.json: \(error)")
        }
    }

    static func mostCommonRank(_ modules: [PeftOutputModule]) -> Int {
        var counts: [Int: Int] = [:]
        for module in modules { counts[module.rank, default: 0] += 1 }
        return counts.max { ($0.value, $0.key) < ($1.value, $1.key) }?.key ?? 1
    }
}
