import BrickyardTestSupport
import Testing
@testable import AdapterIO
@testable import MergeEngine

@Suite struct CatLinearTests {
    /// PEFT's `add_weighted_adapter(..., weights=[1/n]*n, combination_type="cat")`, saved as dense deltas.
    @Test(arguments: [
        (["a_r8", "b_r4"], "peft_cat_a_r8_b_r4.safetensors"),
        (["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"], "peft_cat_a_r8_b_r4_c_rslora_d_pattern_e_bf16.safetensors"),
    ])
    func catEqualsPeftCat(adapters: [String], expectedFile: String) throws {
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: adapters))
        let expected = try SafetensorsFile(path: PeftTinyFixtures.expected(expectedFile))
        #expect(Set(plan.modules.map(\.name)) == Set(expected.tensors.map(\.name)))
        for module in plan.modules {
            let result = try ModuleMerger.merge(module.loadInput(), spec: plan.spec, seed: module.seed)
            #expect(result.rank == module.sources.reduce(0) { $0 + $1.module.rank })
            let reference = try expected.floats(module.name).map(Double.init)
            let error = Dense.relativeError(Dense.product(result), reference)
            #expect(error < 1e-5, "\(module.name): relative error \(error)")
        }
    }

    @Test func catIsExactWithNegativeAndMixedCoefficients() throws {
        let input = Dense.randomInput(out: 7, in: 5, ranks: [3, 1, 2], coefficients: [0.7, -1.3, 2.0], seed: 11)
        let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .cat, rank: 1), seed: 0)
        #expect(result.rank == 6)
        #expect(Dense.relativeError(Dense.product(result), Dense.target(input)) < 1e-6)
        // Balanced folding: B and A parts of each input carry sqrt|c| each.
        let firstA = Array(result.a[0..<5]), inputA = Array(input.terms[0].a[0..<5])
        for (x, y) in zip(firstA, inputA) { #expect(abs(Double(x) - 0.7.squareRoot() * Double(y)) < 1e-6) }
    }

    @Test func linearMatchesItsFormula() throws {
        let coefficients = [0.5, -0.25, 1.5]
        let input = Dense.randomInput(out: 6, in: 4, ranks: [2, 2, 2], coefficients: coefficients, seed: 5)
        let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .linear, rank: 2), seed: 0)
        #expect(result.rank == 2)
        var expectedA = [Double](repeating: 0, count: 2 * 4), expectedB = [Double](repeating: 0, count: 6 * 2)
        for (term, c) in zip(input.terms, coefficients) {
            let root = abs(c).squareRoot(), sign: Double = c < 0 ? -1 : 1
            for index in expectedA.indices { expectedA[index] += sign * root * Double(term.a[index]) }
            for index in expectedB.indices { expectedB[index] += root * Double(term.b[index]) }
        }
        #expect(Dense.relativeError(result.a.map(Double.init), expectedA) < 1e-6)
        #expect(Dense.relativeError(result.b.map(Double.init), expectedB) < 1e-6)
    }

    @Test func linearRefusesUnequalRanks() {
        let input = Dense.randomInput(out: 6, in: 4, ranks: [2, 3], coefficients: [1, 1], seed: 5)
        #expect(throws: MergeError.self) { try ModuleMerger.merge(input, spec: MergeSpec(method: .linear, rank: 2), seed: 0) }
    }
}
