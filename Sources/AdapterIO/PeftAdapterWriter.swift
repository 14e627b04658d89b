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
            throw AdapterIOError(.badArgument, path: directory, "output dtype must be float32, float16 or bfloat16, not \(config.dtype.canonicalName)")
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

    /// Writes one module from little-endian Float32 bytes (A [rank, in] and B [out, rank], row-major, any
    /// alignment): F32 output is written straight from them (`SafetensorsWriter.write(_:float32Bytes:)`).
    public func write(module name: String, aFloat32Bytes a: UnsafeRawBufferPointer, bFloat32Bytes b: UnsafeRawBufferPointer) throws {
        guard modules[name] != nil else { throw AdapterIOError(.badArgument, path: directory, "module \(name) was not declared") }
        try tensors.write(name + ".lora_A.weight", float32Bytes: a)
        try tensors.write(name + ".lora_B.weight", float32Bytes: b)
    }

    public func write(module name: String, a: [Float], b: [Float]) throws {
        try a.withUnsafeBufferPointer { a in try b.withUnsafeBufferPointer { b in try write(module: name, a: a, b: b) } }
    }

    /// Adds another file to the directory (e.g. `merge-report.json`) so it appears atomically with the adapter.
    public func addFile(named name: String, contents: [UInt8]) throws {
        guard !name.isEmpty, !name.contains("/"), name != "." && name != "..",
              !["adapter_config.json", "adapter_model.safetensors"].contains(name) else {
            throw AdapterIOError(.badArgument, path: directory, "cannot add a file named '\(name)'")
        }
        try AtomicFile.write(contents, to: temporaryDirectory + "/" + name)
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

/// Builds adapter_config.json laid out as PEFT's `json.dumps(indent=2, sort_keys=True)` does, with only the
/// long-standing LoRA fields (`keys`). PEFT before 0.14 turns every config key into a `LoraConfig(**kwargs)`
/// argument and refuses the file on any field it does not know (`unexpected keyword argument
/// 'alora_invocation_tokens'` from 0.13.2 on the full key set 0.21 writes), while newer PEFT fills absent fields
/// with defaults, which are what a plain merged LoRA needs. So the file loads in every PEFT since rank_pattern
/// and alpha_pattern exist (0.7).
enum PeftConfigWriter {
    /// Every key written: all are `LoraConfig` fields in PEFT 0.7 through 0.21.
    static let keys: Set<String> = [
        "alpha_pattern", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
        "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r",
        "rank_pattern", "revision", "target_modules", "task_type", "use_rslora",
    ]

    static func json(modules: [PeftOutputModule], config: PeftOutputConfig, path: String) throws -> Data {
        let rank = config.rank ?? mostCommonRank(modules)
        var rankPattern: [String: ConfigJSON] = [:]
        var alphaPattern: [String: ConfigJSON] = [:]
        for module in modules where module.rank != rank {
            // PEFT matches pattern keys against names inside the base model, without the PeftModel wrapper. A full
            // name also works in PEFT < 0.14, whose regex `.*\.{key}$` needs a prefix but which falls back to an
            // exact lookup of the module name.
            let key = PeftNames.strippingWrapperPrefix(module.name)
            rankPattern[key] = .int(module.rank)
            alphaPattern[key] = .int(module.rank * config.alphaPerRank)
        }
        let targets = config.targetModules.isEmpty ? modules.map { PeftNames.leaf($0.name) } : config.targetModules
        let text: (String?) -> ConfigJSON = { $0.map(ConfigJSON.string) ?? .null }
        let object: [String: ConfigJSON] = [
            "alpha_pattern": .object(alphaPattern), "base_model_name_or_path": text(config.baseModelNameOrPath),
            "bias": .string("none"), "fan_in_fan_out": .bool(config.fanInFanOut), "inference_mode": .bool(true),
            "init_lora_weights": .bool(true), "layers_pattern": .null, "layers_to_transform": .null,
            "lora_alpha": .int(rank * config.alphaPerRank), "lora_dropout": .double(0), "modules_to_save": .null,
            "peft_type": .string("LORA"), "r": .int(rank), "rank_pattern": .object(rankPattern), "revision": .null,
            "target_modules": .array(Array(Set(targets)).sorted().map(ConfigJSON.string)),
            "task_type": text(config.taskType), "use_rslora": .bool(false),
        ]
        assert(Set(object.keys) == keys)
        return Data((ConfigJSON.object(object).render(indent: 0) + "\n").utf8)
    }

    static func mostCommonRank(_ modules: [PeftOutputModule]) -> Int {
        var counts: [Int: Int] = [:]
        for module in modules { counts[module.rank, default: 0] += 1 }
        return counts.max { ($0.value, $0.key) < ($1.value, $1.key) }?.key ?? 1
    }
}

/// The JSON values an adapter config holds, rendered with sorted keys and two-space indentation.
enum ConfigJSON {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ConfigJSON])
    case object([String: ConfigJSON])

    func render(indent: Int) -> String {
        let inner = String(repeating: " ", count: indent + 2)
        let outer = String(repeating: " ", count: indent)
        switch self {
        case .null: return "null"
        case let .bool(flag): return flag ? "true" : "false"
        case let .int(number): return String(number)
        case let .double(number): return number == number.rounded() && abs(number) < 1e15 ? String(format: "%.1f", number) : "\(number)"
        case let .string(text): return JSONText.quote(text)
        case let .array(items):
            guard !items.isEmpty else { return "[]" }
            return "[\n" + items.map { inner + $0.render(indent: indent + 2) }.joined(separator: ",\n") + "\n" + outer + "]"
        case let .object(fields):
            guard !fields.isEmpty else { return "{}" }
            let lines = fields.keys.sorted().map { key in
                inner + JSONText.quote(key) + ": " + (fields[key] ?? .null).render(indent: indent + 2)
            }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + outer + "}"
        }
    }
}
