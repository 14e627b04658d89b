import AdapterIO
import BrickyardTestSupport
import Foundation
import MergeEngine
import Testing
@testable import Adaptive

private let fixtures = PeftTinyFixtures.root.appendingPathComponent("adapters").path

@Suite("Learned merge output")
struct AdaptOutputTests {
    @Test("the output's ΔW is Σ_i λ[m, i] s_i B_i A_i per module (cat exactly; svd at full rank)", arguments: [MergeMethodName.cat, .svd])
    func foldedCoefficients(method: MergeMethodName) throws {
        let pool = try ["a_r8", "b_r4", "c_rslora"].map { LoadedAdapter(try PeftAdapter.load(path: fixtures + "/" + $0)) }
        var spec = AdaptSpec()
        spec.output = AdaptOutputSpec(method: method, rank: method == .svd ? 64 : nil)
        let job = AdaptJob(pool: JobSpec(method: .cat, seed: 1, adapters: pool.map { AdapterEntry(path: $0.path) }), baseModel: "/b",
                           data: AdaptDataSpec(train: "/t"), adapt: spec)
        let selected = [0, 2]
        let modules = Set(selected.flatMap { pool[$0].modules.map(\.name) }).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let layout = CoefficientLayout(granularity: .perModule, modules: modules, adapterCount: 2)
        let lambda = (0..<layout.coefficientCount).map { 0.25 * Double($0 % 7) - 0.6 }
        var state = AdaptState(fingerprint: "f")
        state.selection = SelectionOutcome(criterion: .none, scores: [nil, nil, nil], selected: selected)
        let outcome = AdaptOutcome(state: state, selected: selected, layout: layout, coefficients: lambda, theta: lambda, scores: [:])
        let report = AdaptReport(job: job, pool: pool, train: 1, validation: 1, outcome: outcome, seconds: 0)
        let directory = NSTemporaryDirectory() + "adapt-output-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AdaptOutput.write(job: job, pool: pool, outcome: outcome, report: report, to: directory + "/out", overwrite: false)
        for name in ["adapter_config.json", "adapter_model.safetensors", "adapt-report.json", "coefficients.json", "coefficients.png"] {
            #expect(FileManager.default.fileExists(atPath: directory + "/out/" + name), "\(name)")
        }
        let output = try denseUpdates(LoadedAdapter(try PeftAdapter.load(path: directory + "/out")))
        var expected: [String: [Double]] = [:]
        for (column, index) in selected.enumerated() {
            let updates = try denseUpdates(pool[index]) { name in lambda[(modules.firstIndex(of: name) ?? 0) * 2 + column] }
            for (name, matrix) in updates { expected[name] = zip(expected[name] ?? matrix.map { _ in 0 }, matrix).map { $0 + $1 } }
        }
        #expect(Set(output.keys) == Set(expected.keys))
        for (name, matrix) in expected {
            let got = try #require(output[name])
            let scale = max(1e-6, matrix.map(abs).max() ?? 0)
            let error = zip(got, matrix).map { abs($0 - $1) }.max() ?? 0
            #expect(error <= 1e-4 * scale, "\(name): max error \(error) (scale \(scale))")
        }
        // Nothing is left next to the output.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != "out" }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
