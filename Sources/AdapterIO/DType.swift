/// Element type of a tensor as safetensors names it.
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
}
