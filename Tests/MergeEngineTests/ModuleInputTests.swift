import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO
@testable import MergeEngine

@Suite struct ModuleInputTests {
    /// Inputs that could arrive over the wire with inconsistent sizes are errors, never traps.
    @Test(arguments: [MergeMethodName.cat, .linear, .ties, .dareLinear, .magnitudePrune])
    func malformedInputIsAnError(method: MergeMethodName) {
        var input = Dense.randomInput(out: 4, in: 3, ranks: [2, 2], coefficients: [1, 1], seed: 1)
        input.terms[1].a.removeLast()
        #expect(throws: MergeError.self) { try ModuleMerger.merge(input, spec: MergeSpec(method: method, rank: 2), seed: 0) }
    }

    @Test(arguments: [0.0, -0.5, 1.5, Double.nan])
    func densityOutsideRangeIsAnErrorAtMergeTime(density: Double) {
        let input = Dense.randomInput(out: 4, in: 3, ranks: [2], coefficients: [1], seed: 1)
        var spec = MergeSpec(method: .ties, rank: 2)
        spec.prune.density = density
        #expect(throws: MergeError.self) { try ModuleMerger.merge(input, spec: spec, seed: 0) }
    }

    /// A factor stored transposed is accepted only for fan_in_fan_out adapters, and comes out in logical layout.
    @Test func transposedFactorsNeedFanInFanOut() throws {
        let ref = TensorRef(path: "x.safetensors", dtype: .f32, shape: [3, 2], byteOffset: 0, byteCount: 24)
        let stored: [Float] = [1, 2, 3, 4, 5, 6]  // [3, 2] → logical [2, 3]
        let logical = try FactorLayout.rowsByColumns(stored, ref: ref, rows: 2, cols: 3, transposedAllowed: true, module: "m", factor: "lora_A")
        #expect(logical == [1, 3, 5, 2, 4, 6])
        #expect(throws: MergeError.self) {
            try FactorLayout.rowsByColumns(stored, ref: ref, rows: 2, cols: 3, transposedAllowed: false, module: "m", factor: "lora_A")
        }
    }

    @Test func inlineDecodeTransposesAndChecksSizes() throws {
        let a: [Float] = [1, 2, 3, 4, 5, 6]  // stored [in 3, r 2]
        let b: [Float] = [7, 8, 9, 10]        // stored [r 2, out 2]
        func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        let term = InlineTerm(coefficient: 0.5, rank: 2, aBytes: bytes(a), aDType: .f32, bBytes: bytes(b), bDType: .f32, transposed: true)
        let input = try ModuleInput.decode(name: "m", outFeatures: 2, inFeatures: 3, terms: [term])
        #expect(input.terms[0].a == [1, 3, 5, 2, 4, 6])
        #expect(input.terms[0].b == [7, 9, 8, 10])
        let short = InlineTerm(coefficient: 1, rank: 2, aBytes: Array(bytes(a).dropLast(4)), aDType: .f32, bBytes: bytes(b), bDType: .f32)
        #expect(throws: (any Error).self) { try ModuleInput.decode(name: "m", outFeatures: 2, inFeatures: 3, terms: [short]) }
    }

    @Test func localMergeReportsProgressPerModule() throws {
        let scratch = try TestDirectory("progress")
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8", "b_r4"]))
        var seen: [Int] = []
        try LocalMerge.run(plan: plan, outputDirectory: scratch.file("out")) { seen.append($0.done) }
        #expect(seen == Array(1...plan.modules.count))
    }
}
