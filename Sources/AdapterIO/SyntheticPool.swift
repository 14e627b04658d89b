import Foundation

/// Deterministic pseudo-random PEFT adapters with real model shapes, for the demo, tests and benchmarks.
/// Same options → byte-identical files.
public struct SyntheticPool: Sendable {
    /// Base-model geometry.
    public enum Shape: String, Sendable, CaseIterable {
        case tiny
        case llama3_8b = "llama3-8b"

        var hidden: Int { self == .tiny ? 64 : 4096 }
        var intermediate: Int { self == .tiny ? 128 : 14336 }
        var kvDimension: Int { self == .tiny ? 32 : 1024 }
        public var defaultLayers: Int { self == .tiny ? 2 : 32 }
        public var baseModel: String { self == .tiny ? "tiny-llama" : "meta-llama/Meta-Llama-3-8B" }
    }

    /// Short module names accepted in `modules`, in Llama order.
    public static let moduleKinds = ["q", "k", "v", "o", "gate", "up", "down"]

    public var shape: Shape
    public var adapterCount: Int
    public var rank: Int
    public var layers: Int
    public var modules: [String]
    public var dtype: DType
    public var seed: UInt64
    /// Adapters cycle through ranks rank/2, rank, 2·rank instead of all having `rank`.
    public var rankSpread: Bool
    /// 0: every unit independent (no structure to find). K > 0: every rank-one unit of every adapter is one of K
    /// directions shared per module across the pool (random magnitude, random gauge sign on both factors) plus `noise`, as when adapters
    /// trained on related tasks learn overlapping directions: the structure LoRA-LEGO clusters.
    public var sharedUnits: Int
    /// Relative size of the independent noise added to each shared unit.
    public var noise: Double

    public init(shape: Shape = .tiny, adapterCount: Int, rank: Int, layers: Int? = nil, modules: [String] = moduleKinds,
                dtype: DType = .bf16, seed: UInt64 = 0, rankSpread: Bool = false, sharedUnits: Int = 0,
                noise: Double = 0.05) throws {
        guard adapterCount >= 1 else { throw AdapterIOError(.badArgument, path: "synth", "--adapters must be at least 1") }
        guard rank >= 1 else { throw AdapterIOError(.badArgument, path: "synth", "--rank must be at least 1") }
        if let layers, layers < 1 { throw AdapterIOError(.badArgument, path: "synth", "--layers must be at least 1") }
        if let unknown = modules.first(where: { !Self.moduleKinds.contains($0) }) {
            throw AdapterIOError(.badArgument, path: "synth", "unknown module '\(unknown)' (expected some of \(Self.moduleKinds.joined(separator: ",")))")
        }
        guard !modules.isEmpty else { throw AdapterIOError(.badArgument, path: "synth", "--modules is empty") }
        guard sharedUnits >= 0 else { throw AdapterIOError(.badArgument, path: "synth", "--shared-units must be 0 or more") }
        guard noise >= 0, noise.isFinite else { throw AdapterIOError(.badArgument, path: "synth", "--noise must be a finite number ≥ 0") }
        guard [.f32, .f16, .bf16].contains(dtype) else { throw AdapterIOError(.badArgument, path: "synth", "dtype must be F32, F16 or BF16") }
        self.shape = shape
        self.adapterCount = adapterCount
        self.rank = rank
        self.layers = layers ?? shape.defaultLayers
        self.modules = modules
        self.dtype = dtype
        self.seed = seed
        self.rankSpread = rankSpread
        self.sharedUnits = sharedUnits
        self.noise = noise
    }

    /// Rank of adapter `index`.
    public func rank(ofAdapter index: Int) -> Int {
        guard rankSpread else { return rank }
        return max(1, [rank / 2, rank, rank * 2][index % 3])
    }

    /// Every module of one adapter: full PEFT name and (in, out) features, sorted by name.
    public func moduleShapes(rank: Int) -> [PeftOutputModule] {
        var result: [PeftOutputModule] = []
        for layer in 0..<layers {
            for kind in modules {
                let (block, inFeatures, outFeatures): (String, Int, Int) = switch kind {
                case "q": ("self_attn", shape.hidden, shape.hidden)
                case "k": ("self_attn", shape.hidden, shape.kvDimension)
                case "v": ("self_attn", shape.hidden, shape.kvDimension)
                case "o": ("self_attn", shape.hidden, shape.hidden)
                case "gate": ("mlp", shape.hidden, shape.intermediate)
                case "up": ("mlp", shape.hidden, shape.intermediate)
                default: ("mlp", shape.intermediate, shape.hidden)
                }
                result.append(PeftOutputModule(name: "base_model.model.model.layers.\(layer).\(block).\(kind)_proj",
                                               rank: rank, inFeatures: inFeatures, outFeatures: outFeatures))
            }
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Writes adapter-000, adapter-001, … under `directory` (created if needed); returns their paths.
    @discardableResult
    public func write(to directory: String, overwrite: Bool = false) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw AdapterIOError(.io, path: directory, "cannot create directory: \(error.localizedDescription)")
        }
        var paths: [String] = []
        for index in 0..<adapterCount {
            let path = directory + "/" + String(format: "adapter-%03d", index)
            try writeAdapter(index: index, to: path, overwrite: overwrite)
            paths.append(path)
        }
        return paths
    }

    private func writeAdapter(index: Int, to path: String, overwrite: Bool) throws {
        let adapterRank = rank(ofAdapter: index)
        let shapes = moduleShapes(rank: adapterRank)
        // Fewer layers than the base model: list the modules themselves, so PEFT puts LoRA layers only where the file
        // has factors (short names would reach every layer, and PEFT would warn about missing adapter keys).
        let targets = layers < shape.defaultLayers ? shapes.map { PeftNames.strippingWrapperPrefix($0.name) }
                                                   : modules.map { "\($0)_proj" }
        let config = PeftOutputConfig(baseModelNameOrPath: shape.baseModel, taskType: "CAUSAL_LM", targetModules: targets,
                                      dtype: dtype, rank: adapterRank, metadata: ["brickyard.synth.seed": String(seed)],
                                      alphaPerRank: 2)
        let writer = try PeftAdapterWriter(directory: path, modules: shapes, config: config, overwrite: overwrite)
        for module in shapes {
            var random = GaussianStream(seed: SplitMix.mix(seed ^ SplitMix.mix(UInt64(index))) ^ SplitMix.hash(module.name))
            let (a, b) = sharedUnits > 0 ? structuredFactors(module, random: &random) : independentFactors(module, random: &random)
            try writer.write(module: module.name, a: a, b: b)
        }
        try writer.finish()
    }
}

extension SyntheticPool {
    // A like a Kaiming-style init (std 1/sqrt(in)); B small but non-zero, as after some training.
    private static let bStandardDeviation = 0.02
    private static func aStandardDeviation(_ module: PeftOutputModule) -> Double { 1 / Double(module.inFeatures).squareRoot() }

    private func independentFactors(_ module: PeftOutputModule, random: inout GaussianStream) -> (a: [Float], b: [Float]) {
        let a = random.samples(module.rank * module.inFeatures, standardDeviation: Self.aStandardDeviation(module))
        let b = random.samples(module.outFeatures * module.rank, standardDeviation: Self.bStandardDeviation)
        return (a, b)
    }

    /// Units drawn from the module's dictionary of `sharedUnits` directions (the same for every adapter of the pool).
    private func structuredFactors(_ module: PeftOutputModule, random: inout GaussianStream) -> (a: [Float], b: [Float]) {
        var dictionaryStream = GaussianStream(seed: SplitMix.mix(seed ^ 0x5eed_d1c7) ^ SplitMix.hash(module.name))
        let (r, inFeatures, outFeatures) = (module.rank, module.inFeatures, module.outFeatures)
        let dictionaryA = dictionaryStream.samples(sharedUnits * inFeatures, standardDeviation: Self.aStandardDeviation(module))
        let dictionaryB = dictionaryStream.samples(sharedUnits * outFeatures, standardDeviation: Self.bStandardDeviation)
        var a = random.samples(r * inFeatures, standardDeviation: Self.aStandardDeviation(module) * noise)
        var b = random.samples(outFeatures * r, standardDeviation: Self.bStandardDeviation * noise)
        for j in 0..<r {
            let unit = random.index(below: sharedUnits)
            let magnitude = Float((0.5 + random.uniform()).squareRoot())
            let sign: Float = random.uniform() < 0.5 ? -1 : 1
            // The sign flips both factors: the same contribution in another gauge, as training produces.
            for column in 0..<inFeatures { a[j * inFeatures + column] += sign * magnitude * dictionaryA[unit * inFeatures + column] }
            for row in 0..<outFeatures { b[row * r + j] += sign * magnitude * dictionaryB[unit * outFeatures + row] }
        }
        return (a, b)
    }
}

/// SplitMix64: a tiny, fast, well-mixed generator; the whole pool derives from its outputs.
enum SplitMix {
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// FNV-1a of UTF-8 text.
    static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return mix(hash)
    }
}

/// Normal samples from SplitMix64 by Box–Muller (two per pair of uniforms).
struct GaussianStream {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// Uniform in (0, 1].
    mutating func uniform() -> Double { nextUniform() }

    /// Uniform in 0..<bound (bound ≥ 1); the modulo bias is irrelevant for test data.
    mutating func index(below bound: Int) -> Int { Int(min(nextUniform() * Double(bound), Double(bound - 1))) }

    private mutating func nextUniform() -> Double {
        state &+= 0x9e37_79b9_7f4a_7c15
        // 53 random bits in (0, 1]: never 0, so the logarithm is finite.
        return (Double(SplitMix.mix(state) >> 11) + 1) * 0x1p-53
    }

    mutating func samples(_ count: Int, standardDeviation: Double) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            var index = 0
            while index < count {
                let radius = (-2 * Foundation.log(nextUniform())).squareRoot() * standardDeviation
                let angle = 2 * Double.pi * nextUniform()
                buffer[index] = Float(radius * Foundation.cos(angle))
                if index + 1 < count { buffer[index + 1] = Float(radius * Foundation.sin(angle)) }
                index += 2
            }
            initialized = count
        }
    }
}
