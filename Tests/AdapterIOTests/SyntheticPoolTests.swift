import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// The synthetic pool: deterministic bytes, requested shapes and ranks, valid PEFT directories.
@Suite struct SyntheticPoolTests {
    @Test func sameOptionsGiveIdenticalBytes() throws {
        let first = try TestDirectory("pool")
        let second = try TestDirectory("pool")
        let pool = try SyntheticPool(adapterCount: 2, rank: 3, seed: 42)
        try pool.write(to: first.path)
        try pool.write(to: second.path)
        for adapter in ["adapter-000", "adapter-001"] {
            for file in ["adapter_model.safetensors", "adapter_config.json"] {
                let a = try Data(contentsOf: URL(fileURLWithPath: "\(first.path)/\(adapter)/\(file)"))
                let b = try Data(contentsOf: URL(fileURLWithPath: "\(second.path)/\(adapter)/\(file)"))
                #expect(a == b, "\(adapter)/\(file)")
            }
        }
        let other = try TestDirectory("pool")
        try SyntheticPool(adapterCount: 1, rank: 3, seed: 43).write(to: other.path)
        let differentSeed = try Data(contentsOf: URL(fileURLWithPath: other.path + "/adapter-000/adapter_model.safetensors"))
        #expect(differentSeed != (try Data(contentsOf: URL(fileURLWithPath: first.path + "/adapter-000/adapter_model.safetensors"))))
    }

    @Test func rankSpreadAndTinyShapes() throws {
        let scratch = try TestDirectory("pool")
        let paths = try SyntheticPool(adapterCount: 3, rank: 4, dtype: .f32, rankSpread: true).write(to: scratch.path)
        let adapters = try paths.map { try PeftAdapter.load(path: $0) }
        #expect(adapters.map { $0.modules[0].rank } == [2, 4, 8])
        for adapter in adapters {
            #expect(adapter.modules.count == 14)
            #expect(adapter.modules.allSatisfy { $0.scaling == 2 })
            #expect(adapter.config.baseModelNameOrPath == "tiny-llama")
            #expect(adapter.targetModuleNames == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
            let down = try #require(adapter.module(named: "base_model.model.model.layers.1.mlp.down_proj"))
            #expect((down.inFeatures, down.outFeatures) == (128, 64))
            let (a, b) = try adapter.loadFactors(down)
            #expect(a.allSatisfy(\.isFinite) && b.allSatisfy(\.isFinite))
            // A ~ N(0, 1/in): its mean square is near 1/in.
            let meanSquare = a.reduce(0) { $0 + Double($1 * $1) } / Double(a.count)
            #expect(abs(meanSquare * 128 - 1) < 0.35)
        }
    }

    /// With shared units and no noise, every rank-one unit of every adapter is ± one of the K dictionary units
    /// (gauge sign on both factors, so the contribution b·aᵀ points the same way up to its magnitude).
    @Test func sharedUnitsComeFromTheModuleDictionary() throws {
        let scratch = try TestDirectory("pool")
        let paths = try SyntheticPool(adapterCount: 4, rank: 4, modules: ["q"], dtype: .f32, sharedUnits: 3, noise: 0)
            .write(to: scratch.path)
        var directions: [[Float]] = []  // distinct unit A-directions, up to sign
        var contributionSigns: [Int: Set<Bool>] = [:]
        for path in paths {
            let adapter = try PeftAdapter.load(path: path)
            let module = adapter.modules[0]
            let (a, b) = try adapter.loadFactors(module)
            let (r, inFeatures) = (module.rank, module.inFeatures)
            for j in 0..<r {
                let row = Array(a[(j * inFeatures)..<((j + 1) * inFeatures)])
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let unit = row.map { $0 / norm }
                let match = directions.firstIndex { d in abs(zip(d, unit).reduce(0) { $0 + $1.0 * $1.1 }) > 0.999 }
                let index = match ?? directions.count
                if match == nil { directions.append(unit) }
                // Sign of the contribution: b_j · a_j against the first one seen for this direction.
                let aSign = zip(directions[index], unit).reduce(0) { $0 + $1.0 * $1.1 } > 0
                let bFirst = b[j]  // row 0 of B [out, r]
                contributionSigns[index, default: []].insert(aSign == (bFirst > 0))
            }
        }
        #expect(directions.count <= 3)
        #expect(directions.count >= 2)
        // Gauge flips never flip the contribution: each direction keeps one contribution sign.
        #expect(contributionSigns.values.allSatisfy { $0.count == 1 })
    }

    @Test func badOptionsAreRefused() {
        #expect(throws: AdapterIOError.self) { try SyntheticPool(adapterCount: 0, rank: 4) }
        #expect(throws: AdapterIOError.self) { try SyntheticPool(adapterCount: 1, rank: 0) }
        #expect(throws: AdapterIOError.self) { try SyntheticPool(adapterCount: 1, rank: 4, modules: ["qq"]) }
    }
}
