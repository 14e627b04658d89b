import Foundation

/// A LoRA adapter opened for merging: a PEFT directory (adapter_config.json + adapter_model.safetensors) or a
/// bare .safetensors file with rank/alpha given by the caller. Modules are validated when loading; factor
/// data is read lazily by `loadFactors`.
public struct PeftAdapter: Sendable {
    /// The path as given (directory or file).
    public let path: String
    /// The safetensors file holding the factors.
    public let weightsPath: String
    /// The adapter's config (for a bare file: synthesised from the caller's rank/alpha).
    public let config: PeftConfig
    /// Sorted by name.
    public let modules: [LoraModuleInfo]
    /// Whether NaN/Inf factors are accepted by `loadFactors`.
    public let allowNonFinite: Bool
    private let file: SafetensorsFile
    private let moduleIndex: [String: Int]

    /// Opens and validates an adapter. For a bare .safetensors file `rank` (if given) must match every module and
    /// `alpha` defaults to each module's rank (scaling 1); both are ignored for a directory.
    public static func load(path: String, rank: Int? = nil, alpha: Double? = nil, allowNonFinite: Bool = false) throws -> PeftAdapter {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AdapterIOError(.io, path: path, "does not exist")
        }
        if isDirectory.boolValue {
            let folder = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
            let configPath = folder + "/adapter_config.json"
            let weightsPath = folder + "/adapter_model.safetensors"
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw AdapterIOError(.missingConfig, path: path, "no adapter_config.json: not a PEFT adapter directory")
            }
            guard FileManager.default.fileExists(atPath: weightsPath) else {
                if FileManager.default.fileExists(atPath: folder + "/adapter_model.bin") {
                    throw AdapterIOError(.unsupported, path: path, "adapter_model.bin is a pickle checkpoint: convert it to adapter_model.safetensors (e.g. safetensors.torch.save_file)")
                }
                throw AdapterIOError(.io, path: path, "no adapter_model.safetensors")
            }
            let config = try PeftConfig.load(path: configPath)
            return try PeftAdapter(path: path, weightsPath: weightsPath, config: config, bare: false, allowNonFinite: allowNonFinite)
        }
        if path.hasSuffix(".bin") || path.hasSuffix(".pt") || path.hasSuffix(".pth") {
            throw AdapterIOError(.unsupported, path: path, "pickle checkpoints are not read: convert it to .safetensors (e.g. safetensors.torch.save_file)")
        }
        if let rank, rank < 1 { throw AdapterIOError(.badArgument, path: path, "rank must be at least 1") }
        // A bare file has no config: rank 0 means "take each module's rank from its factors".
        let config = PeftConfig(r: rank ?? 0, loraAlpha: alpha ?? 0)
        return try PeftAdapter(path: path, weightsPath: path, config: config, bare: true, alphaGiven: alpha != nil,
                               allowNonFinite: allowNonFinite)
    }

    private init(path: String, weightsPath: String, config: PeftConfig, bare: Bool, alphaGiven: Bool = true,
                 allowNonFinite: Bool) throws {
        self.path = path
        self.weightsPath = weightsPath
        self.allowNonFinite = allowNonFinite
        let file = try SafetensorsFile(path: weightsPath)
        self.file = file
        let pairs = try LoraKeyGrouping.group(file.tensors, path: weightsPath)
        var modules: [LoraModuleInfo] = []
        modules.reserveCapacity(pairs.count)
        let rankPatterns = PatternTable(keys: config.rankPattern.keys)
        let alphaPatterns = PatternTable(keys: config.alphaPattern.keys)
        for pair in pairs {
            let (a, b) = (pair.a, pair.b)
            guard a.shape.count == 2, b.shape.count == 2 else {
                throw AdapterIOError(.shapeMismatch, path: weightsPath, "module \(pair.module): factors must be 2-D, lora_A is \(a.shape) and lora_B is \(b.shape)")
            }
            let rank = a.shape[0]
            guard b.shape[1] == rank else {
                throw AdapterIOError(.rankMismatch, path: weightsPath, "module \(pair.module): lora_A \(a.shape) has rank \(rank) but lora_B \(b.shape) has rank \(b.shape[1])")
            }
            guard rank >= 1 else { throw AdapterIOError(.rankMismatch, path: weightsPath, "module \(pair.module): rank is 0") }
            let expectedRank = bare ? (config.r == 0 ? rank : config.r) : config.rank(for: pair.module, patterns: rankPatterns)
            guard expectedRank == rank else {
                let source = bare ? "the given rank is \(expectedRank)" : "adapter_config.json gives r=\(expectedRank)"
                throw AdapterIOError(.rankMismatch, path: weightsPath, "module \(pair.module): factors have rank \(rank) but \(source)")
            }
            let alpha = bare ? (alphaGiven ? config.loraAlpha : Double(rank)) : config.alpha(for: pair.module, patterns: alphaPatterns)
            modules.append(LoraModuleInfo(
                name: pair.module, rank: rank, alpha: alpha, scaling: config.scaling(rank: rank, alpha: alpha),
                inFeatures: a.shape[1], outFeatures: b.shape[0],
                a: try file.reference(a.name), b: try file.reference(b.name), fanInFanOut: config.fanInFanOut))
        }
        guard !modules.isEmpty else {
            throw AdapterIOError(.badTensorLayout, path: weightsPath, "holds no LoRA factors (no *.lora_A.weight / *.lora_B.weight keys)")
        }
        self.modules = modules
        self.config = config
        moduleIndex = Dictionary(uniqueKeysWithValues: modules.enumerated().map { ($1.name, $0) })
    }

    public func module(named name: String) -> LoraModuleInfo? {
        moduleIndex[name].map { modules[$0] }
    }

    /// The element types stored, sorted by name.
    public var dtypes: [DType] {
        Set(modules.flatMap { [$0.a.dtype, $0.b.dtype] }).sorted { $0.rawValue < $1.rawValue }
    }

    /// `BF16`, or `F16+F32` when mixed.
    public var dtypeSummary: String { dtypes.map(\.canonicalName).joined(separator: "+") }

    /// Number of LoRA parameters (Σ r·(in + out)).
    public var parameterCount: Int { modules.reduce(0) { $0 + $1.rank * ($1.inFeatures + $1.outFeatures) } }

    /// The opened weights file (already validated), for callers that walk every tensor.
    public var safetensors: SafetensorsFile { file }

    /// Size of the weights file in bytes.
    public var fileSize: Int { file.fileSize }

    /// Distinct last components of the module names (`q_proj`, …), sorted: what `target_modules` should list.
    public var targetModuleNames: [String] { Array(Set(modules.map { PeftNames.leaf($0.name) })).sorted() }

    /// What a merged adapter's `target_modules` should list so PEFT puts LoRA layers exactly where this adapter
    /// has factors: its config's short names (plus its modules' last components) when the config targets every
    /// module of those names; otherwise (regex targets, `layers_to_transform`, `exclude_modules`, bare files, or
    /// names with a dot such as `model.layers.0.self_attn.q_proj`, which PEFT matches as a path suffix, so adding
    /// their last component would reach every layer) the full module names inside the base model, which PEFT
    /// matches one module each.
    public var mergeTargetModules: [String] {
        guard config.targetsEveryNamedModule, case .names(let names) = config.targetModules,
              names.allSatisfy({ !$0.contains(".") }) else {
            return Array(Set(modules.map { PeftNames.strippingWrapperPrefix($0.name) })).sorted()
        }
        return Array(Set(names).union(targetModuleNames)).sorted()
    }

    /// The module's factors as Float32: A row-major [rank, in], B row-major [out, rank].
    public func loadFactors(_ module: LoraModuleInfo) throws -> (a: [Float], b: [Float]) {
        let a = try floats(module.a)
        let b = try floats(module.b)
        return (a, b)
    }

    private func floats(_ ref: TensorRef) throws -> [Float] {
        guard let name = ref.name, ref.path == weightsPath else { return try TensorReader.readFloats(ref, allowNonFinite: allowNonFinite) }
        return try file.floats(name, allowNonFinite: allowNonFinite)
    }
}

/// Groups safetensors keys into LoRA modules and refuses keys that are not LoRA factors.
enum LoraKeyGrouping {
    struct Pair {
        var module: String
        var a: SafetensorsTensorInfo
        var b: SafetensorsTensorInfo
    }

    /// Keys look like `X.lora_A.weight` or `X.lora_A.<adapter name>.weight`; the module is X.
    static func group(_ tensors: [SafetensorsTensorInfo], path: String) throws -> [Pair] {
        var factorA: [String: SafetensorsTensorInfo] = [:]
        var factorB: [String: SafetensorsTensorInfo] = [:]
        var adapterNames: Set<String> = []
        for tensor in tensors {
            let parts = tensor.name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let position = parts.lastIndex(where: { $0 == "lora_A" || $0 == "lora_B" }), position > 0,
                  parts.last == "weight", parts.count - position <= 3,
                  !parts.contains("modules_to_save") else {
                throw AdapterIOError(.unsupported, path: path, "tensor \(tensor.name) is not a LoRA factor (lora_A/lora_B weight): modules_to_save, DoRA magnitudes, embedding LoRA and biases are not supported")
            }
            if parts.count - position == 3 { adapterNames.insert(parts[position + 1]) } else { adapterNames.insert("") }
            let module = parts[..<position].joined(separator: ".")
            if parts[position] == "lora_A" {
                factorA[module] = tensor
            } else {
                factorB[module] = tensor
            }
        }
        if adapterNames.count > 1 {
            let names = adapterNames.map { $0.isEmpty ? "(unnamed)" : $0 }.sorted().joined(separator: ", ")
            throw AdapterIOError(.unsupported, path: path, "holds several adapters (\(names)): save one adapter per file")
        }
        var pairs: [Pair] = []
        for module in Set(factorA.keys).union(factorB.keys).sorted() {
            guard let a = factorA[module] else { throw AdapterIOError(.shapeMismatch, path: path, "module \(module) has lora_B but no lora_A") }
            guard let b = factorB[module] else { throw AdapterIOError(.shapeMismatch, path: path, "module \(module) has lora_A but no lora_B") }
            pairs.append(Pair(module: module, a: a, b: b))
        }
        return pairs
    }
}
