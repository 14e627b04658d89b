/// One LoRA module of an adapter (one adapted linear layer of the base model): its shapes, its rank and
/// scaling as PEFT computes them, and where its two factors are stored.
public struct LoraModuleInfo: Sendable, Codable, Hashable {
    /// Module path as in the keys, without the `.lora_A.weight` suffix,
    /// e.g. `base_model.model.model.layers.0.self_attn.q_proj`.
    public var name: String
    public var rank: Int
    public var alpha: Double
    /// `alpha / rank`, or `alpha / sqrt(rank)` with rsLoRA.
    public var scaling: Double
    public var inFeatures: Int
    public var outFeatures: Int
    /// `lora_A.weight`, logically [rank, inFeatures].
    public var a: TensorRef
    /// `lora_B.weight`, logically [outFeatures, rank].
    public var b: TensorRef
    /// Factors stored transposed (PEFT `fan_in_fan_out`, GPT-2 Conv1D style).
    public var fanInFanOut: Bool

    public init(name: String, rank: Int, alpha: Double, scaling: Double, inFeatures: Int, outFeatures: Int,
                a: TensorRef, b: TensorRef, fanInFanOut: Bool = false) {
        self.name = name
        self.rank = rank
        self.alpha = alpha
        self.scaling = scaling
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
        self.fanInFanOut = fanInFanOut
    }
}
