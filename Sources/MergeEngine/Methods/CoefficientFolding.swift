/// How a signed coefficient is folded into a pair of factors: `sqrt|c|` into each side, the sign on B (METHODS.md).
/// Balanced factors keep bf16/f16 output accurate; sharing this rule keeps cat and linear consistent.
enum CoefficientFolding {
    /// (factor for B, factor for A) such that their product is `c`.
    static func split(_ coefficient: Double) -> (b: Float, a: Float) {
        let root = abs(coefficient).squareRoot()
        return (Float(coefficient < 0 ? -root : root), Float(root))
    }
}
