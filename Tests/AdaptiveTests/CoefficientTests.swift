import Testing
@testable import Adaptive

private let modules = [
    "base_model.model.model.layers.0.self_attn.q_proj", "base_model.model.model.layers.0.self_attn.v_proj",
    "base_model.model.model.layers.1.self_attn.q_proj", "base_model.model.lm_head",
]

@Suite("Coefficient layouts and activations")
struct CoefficientTests {
    @Test("layouts map θ onto λ[m, i] with the right groups")
    func groups() {
        let perLayer = CoefficientLayout(granularity: .perLayer, modules: modules, adapterCount: 2)
        #expect(perLayer.groupOfModule == [0, 0, 1, 2])
        #expect(perLayer.groupNames == ["layer 0", "layer 1", "no layer"])
        let perAdapter = CoefficientLayout(granularity: .perAdapter, modules: modules, adapterCount: 3)
        #expect(perAdapter.parameterCount == 3)
        #expect(perAdapter.coefficients([1, 2, 3], activation: .linear) == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3])
        let perModule = CoefficientLayout(granularity: .perModule, modules: modules, adapterCount: 2)
        #expect(perModule.parameterCount == 8 && perModule.coefficientCount == 8)
    }

    @Test("activations: leaky_relu(0.01), softmax per row, linear")
    func activations() {
        #expect(Activation.leakyReLU.apply([2, -3, 0]) == [2, -0.03, 0])
        let softmax = Activation.softmax.apply([0, 0, 0, 0])
        #expect(softmax.allSatisfy { abs($0 - 0.25) < 1e-15 })
        #expect(Activation.linear.apply([-1.5, 2]) == [-1.5, 2])
    }

    @Test("dL/dθ by the chain rule equals central finite differences",
          arguments: CoefficientLayout.Granularity.allCases, Activation.allCases)
    func chainRule(granularity: CoefficientLayout.Granularity, activation: Activation) {
        let layout = CoefficientLayout(granularity: granularity, modules: modules, adapterCount: 3)
        // L(λ) = Σ_k w_k λ_k² / 2 + c_k λ_k: dL/dλ_k = w_k λ_k + c_k.
        let weights = (0..<layout.coefficientCount).map { 0.5 + Double($0 % 5) * 0.3 }
        let linear = (0..<layout.coefficientCount).map { Double($0 % 3) - 1 }
        func loss(_ theta: [Double]) -> Double {
            let lambda = layout.coefficients(theta, activation: activation)
            return lambda.indices.reduce(0) { $0 + weights[$1] * lambda[$1] * lambda[$1] / 2 + linear[$1] * lambda[$1] }
        }
        let theta = (0..<layout.parameterCount).map { 0.37 * Double(($0 * 7) % 11) - 1.6 }
        let lambda = layout.coefficients(theta, activation: activation)
        let dLambda = lambda.indices.map { weights[$0] * lambda[$0] + linear[$0] }
        let analytic = layout.parameterGradient(theta, coefficientGradient: dLambda, activation: activation)
        let h = 1e-6
        for index in theta.indices {
            var plus = theta, minus = theta
            plus[index] += h; minus[index] -= h
            let numeric = (loss(plus) - loss(minus)) / (2 * h)
            #expect(abs(numeric - analytic[index]) <= 1e-6 * max(1, abs(numeric)), "θ[\(index)]: \(analytic[index]) vs \(numeric)")
        }
    }

    @Test("layer index parsing", arguments: [
        ("base_model.model.model.layers.12.mlp.up_proj", 12 as Int?), ("transformer.h.3.attn.c_attn", 3), ("lm_head", nil),
    ])
    func layerIndex(name: String, expected: Int?) {
        #expect(CoefficientLayout.layerIndex(name) == expected)
    }
}
