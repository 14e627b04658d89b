/// Maps the raw parameter vector θ onto the coefficient table λ[m, i] (module m, adapter i) that evaluators and
/// the CAT assembly use. θ has one row per group of modules and one column per adapter:
/// per_module (a group per module), per_layer (modules sharing a `layers.<k>.` index; modules without one share a
/// group) or per_adapter (one group). The activation maps each row of θ to λ for every module of its group.
public struct CoefficientLayout: Sendable, Equatable {
    public enum Granularity: String, Sendable, Codable, CaseIterable {
        case perModule = "per_module"
        case perLayer = "per_layer"
        case perAdapter = "per_adapter"
    }

    public let granularity: Granularity
    public let modules: [String]
    public let adapterCount: Int
    /// Group index of every module.
    public let groupOfModule: [Int]
    /// A name per group (module name, `layer 3`, `all`).
    public let groupNames: [String]

    public init(granularity: Granularity, modules: [String], adapterCount: Int) {
        self.granularity = granularity
        self.modules = modules
        self.adapterCount = adapterCount
        switch granularity {
        case .perModule:
            groupOfModule = Array(modules.indices)
            groupNames = modules
        case .perAdapter:
            groupOfModule = modules.map { _ in 0 }
            groupNames = ["all"]
        case .perLayer:
            let layers = modules.map(Self.layerIndex)
            let distinct = Array(Set(layers.map { $0 ?? Int.max })).sorted()
            groupOfModule = layers.map { layer in distinct.firstIndex(of: layer ?? Int.max) ?? 0 }
            groupNames = distinct.map { $0 == Int.max ? "no layer" : "layer \($0)" }
        }
    }

    public var groupCount: Int { groupNames.count }
    /// Length of θ.
    public var parameterCount: Int { groupCount * adapterCount }
    /// Length of λ (module-major, the wire layout).
    public var coefficientCount: Int { modules.count * adapterCount }

    /// The `k` of a `…layers.<k>.…` (or `.h.<k>.`, `.blocks.<k>.`) module name.
    public static func layerIndex(_ module: String) -> Int? {
        let parts = module.split(separator: ".")
        for (index, part) in parts.enumerated() where ["layers", "h", "blocks", "layer"].contains(part) {
            if index + 1 < parts.count, let value = Int(parts[index + 1]) { return value }
        }
        return nil
    }

    /// λ (module-major) from θ (group-major).
    public func coefficients(_ theta: [Double], activation: Activation) -> [Double] {
        let rows = (0..<groupCount).map { activation.apply(Array(theta[$0 * adapterCount..<($0 + 1) * adapterCount])) }
        var lambda: [Double] = []
        lambda.reserveCapacity(coefficientCount)
        for group in groupOfModule { lambda += rows[group] }
        return lambda
    }

    /// dL/dθ from dL/dλ: sum over each group's modules (in module order), then the activation's backward.
    public func parameterGradient(_ theta: [Double], coefficientGradient: [Double], activation: Activation) -> [Double] {
        var summed = [Double](repeating: 0, count: parameterCount)
        for (module, group) in groupOfModule.enumerated() {
            for adapter in 0..<adapterCount {
                summed[group * adapterCount + adapter] += coefficientGradient[module * adapterCount + adapter]
            }
        }
        var result: [Double] = []
        result.reserveCapacity(parameterCount)
        for group in 0..<groupCount {
            let range = group * adapterCount..<(group + 1) * adapterCount
            result += activation.backward(Array(theta[range]), gradient: Array(summed[range]))
        }
        return result
    }
}
