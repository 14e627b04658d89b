/// Element type of a tensor. The raw value is safetensors' name (F32, BF16, ...); Brickyard prints
/// `canonicalName` (float32, float16, bfloat16: the spelling of job files and PyTorch) everywhere and accepts
/// every common spelling on input (`init?(spelling:)`).
public enum DType: String, Sendable, Codable, Hashable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .f64: 8
        }
    }

    /// The one spelling Brickyard prints: float32, float16, bfloat16 (float64).
    public var canonicalName: String {
        switch self {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .f64: "float64"
        }
    }

    /// Any accepted spelling, case-insensitive: float32/f32/fp32 (and safetensors' F32), float16/f16/fp16/half,
    /// bfloat16/bf16, float64/f64/fp64/double; a `torch.` prefix is allowed. nil for anything else.
    public init?(spelling: String) {
        var name = spelling.trimmingCharacters(in: .whitespaces).lowercased()
        if name.hasPrefix("torch.") { name.removeFirst("torch.".count) }
        switch name {
        case "float32", "f32", "fp32", "float": self = .f32
        case "float16", "f16", "fp16", "half": self = .f16
        case "bfloat16", "bf16": self = .bf16
        case "float64", "f64", "fp64", "double": self = .f64
        default: return nil
        }
    }

    /// For error messages about stored (output) dtypes: the canonical names with their short forms.
    public static let storedSpellings = "float32 (f32), float16 (f16) or bfloat16 (bf16)"
}
