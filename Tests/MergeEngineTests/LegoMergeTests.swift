import Testing
@testable import Kernels
@testable import MergeEngine

@Suite struct LegoMergeTests {
    static func spec(_ rank: Int, _ reweight: LegoOptions.Reweight, gauge: LegoOptions.Gauge = .balanced,
                     basis: LegoOptions.Basis = .raw, iterations: Int = 100, tolerance: Double = 1e-4,
                     oversample: Int = LegoOptions.defaultOversample) -> MergeSpec {
        var options = LegoOptions()
        options.oversample = oversample
        options.reweight = reweight
        options.gauge = gauge
        options.basis = basis
        options.iterations = iterations
        options.tolerance = tolerance
        return MergeSpec(method: .lego, rank: rank, lego: options)
    }

    /// N identical copies of one adapter (weights normalised to 1/N, scaling s) at its rank give back s·B·A.
    @Test(arguments: [2, 5], [LegoOptions.Reweight.none, .sum, .dual, .optimal])
    func identicalCopiesGiveBackTheAdapter(copies: Int, reweight: LegoOptions.Reweight) throws {
        let one = RandomModules.input(out: 40, in: 24, ranks: [6], coefficients: [2.0], seed: 17)
        var input = one
        input.terms = (0..<copies).map { _ in
            var term = one.terms[0]
            term.coefficient = 2.0 / Double(copies)
            return term
        }
        for gauge in [LegoOptions.Gauge.balanced, .raw] { for basis in [LegoOptions.Basis.raw, .svd] {
            // `none` keeps the mean of N copies of c/N: 1/N of the adapter; every other rule gives it back.
            guard reweight != .none else { continue }
            let result = try ModuleMerger.merge(input, spec: Self.spec(6, reweight, gauge: gauge, basis: basis), seed: 3)
            #expect(result.rank == 6)
            #expect(result.stats.clusterSizes == [Int](repeating: copies, count: 6))
            let expected = RandomModules.target(one)
            #expect(RandomModules.relativeError(RandomModules.dense(result), expected) < 1e-5)
        } }
    }

    /// k ≥ total units: every unit is its own cluster, the result is T.
    @Test(arguments: [LegoOptions.Reweight.dual, .optimal, .none, .sum], [7, 9, 50])
    func rankAtLeastUnitCountIsExact(reweight: LegoOptions.Reweight, rank: Int) throws {
        let input = RandomModules.input(out: 15, in: 11, ranks: [4, 2, 3], seed: 23)
        for basis in [LegoOptions.Basis.raw, .svd] {
        let result = try ModuleMerger.merge(input, spec: Self.spec(rank, reweight, basis: basis), seed: 4)
        if rank >= 9 {
            #expect(result.rank == 9)
            #expect(RandomModules.relativeError(RandomModules.dense(result), RandomModules.target(input)) < 1e-5)
            #expect(result.stats.relativeError < 1e-5)
        } else {
            #expect(result.rank == 7)
            #expect(result.stats.relativeError >= (result.stats.svdFloor ?? 0) - 1e-6)
        }
        }
    }

    /// The optimal reweighting minimises the error over the same clusters, so on k-means' own clustering
    /// (`oversample: 1`, the clustering `dual` uses) it is never worse than dual. (The default with oversampling
    /// on: LegoReweightTests.oversampledOptimalBeatsDualOnRandomPools.)
    @Test(arguments: 0..<6)
    func optimalIsNeverWorseThanDual(module: Int) throws {
        let input = RandomModules.input(out: 32 + module * 8, in: 24 + module * 4, ranks: [4, 4, 4, 2, 8, 4],
                                        seed: UInt64(1000 + module), name: "model.layers.\(module).mlp.up_proj")
        let seed = ModuleSeed.derive(jobSeed: 42, module: input.name)
        let dual = try ModuleMerger.merge(input, spec: Self.spec(6, .dual), seed: seed)
        let optimal = try ModuleMerger.merge(input, spec: Self.spec(6, .optimal, oversample: 1), seed: seed)
        #expect(dual.stats.clusterSizes == optimal.stats.clusterSizes)
        #expect(optimal.stats.relativeError <= dual.stats.relativeError * (1 + 1e-6))
        // Independent check of both reported errors.
        let target = RandomModules.target(input)
        #expect(abs(RandomModules.relativeError(RandomModules.dense(optimal), target) - optimal.stats.relativeError) < 1e-5)
        #expect(abs(RandomModules.relativeError(RandomModules.dense(dual), target) - dual.stats.relativeError) < 1e-5)
        #expect(optimal.stats.relativeError >= (optimal.stats.svdFloor ?? 0) - 1e-6)
    }

    /// Planted clusters of units across adapters: lego finds them and reproduces T almost exactly.
    @Test(arguments: [UInt64(1), 2, 3])
    func plantedUnitClustersAreRecovered(seed: UInt64) throws {
        let (out, inFeatures, k, adapters) = (20, 16, 3, 8)
        var random = DeterministicRandom(seed: seed)
        let bases = (0..<k).map { _ in
            ((0..<out).map { _ in Float(random.nextGaussian()) }, (0..<inFeatures).map { _ in Float(random.nextGaussian()) })
        }
        // Adapter i has rank k; its unit j is a noisy, randomly signed, randomly scaled copy of basis (j + i) % k.
        let terms = (0..<adapters).map { i in
            var a = [Float](), b = [Float](repeating: 0, count: out * k)
            for j in 0..<k {
                let (bb, aa) = bases[(j + i) % k]
                let sign: Float = random.nextIndex(below: 2) == 0 ? -1 : 1
                let scale = Float(0.5 + random.nextUnitDouble())
                for r in 0..<out { b[r * k + j] = sign * scale * (bb[r] + Float(0.001 * random.nextGaussian())) }
                a += aa.map { sign * ($0 + Float(0.001 * random.nextGaussian())) / scale }
            }
            return LoraTerm(coefficient: 1.0 / Double(adapters), rank: k, a: a, b: b)
        }
        let input = ModuleInput(name: "m", outFeatures: out, inFeatures: inFeatures, terms: terms)
        let result = try ModuleMerger.merge(input, spec: Self.spec(k, .dual), seed: seed)
        #expect(result.stats.clusterSizes == [adapters, adapters, adapters])
        #expect(result.stats.relativeError < 1e-2)
    }

    @Test(arguments: [LegoOptions.Reweight.dual, .optimal, .none])
    func twoRunsAreByteIdentical(reweight: LegoOptions.Reweight) throws {
        let input = RandomModules.input(out: 48, in: 40, ranks: [8, 8, 8, 8], seed: 8)
        let first = try ModuleMerger.merge(input, spec: Self.spec(8, reweight), seed: 11)
        let second = try ModuleMerger.merge(input, spec: Self.spec(8, reweight), seed: 11)
        let same = first.b.map(\.bitPattern) == second.b.map(\.bitPattern)
            && first.a.map(\.bitPattern) == second.a.map(\.bitPattern)
        #expect(same)
        #expect(first.stats == second.stats)
        // 32 units at k = 8 are below the oversampling gate: `optimal`/`none` select units (no Lloyd step), `dual`
        // runs k-means at k.
        #expect((first.stats.iterations ?? 0) >= (reweight == .dual ? 1 : 0))
        #expect(first.stats.clusterSizes?.reduce(0, +) == 32)
    }

    @Test func toleranceZeroRunsExactlyTheIterations() throws {
        let input = RandomModules.input(out: 20, in: 20, ranks: [4, 4, 4], seed: 9)
        let result = try ModuleMerger.merge(input, spec: Self.spec(4, .dual, iterations: 17, tolerance: 0), seed: 1)
        #expect(result.stats.iterations == 17)
    }

    @Test func allZeroUnitsGiveOneZeroUnit() throws {
        var input = RandomModules.input(out: 6, in: 5, ranks: [2, 3], seed: 2)
        for i in input.terms.indices { input.terms[i].b = input.terms[i].b.map { _ in 0 } }  // untrained LoRA: B = 0
        let result = try ModuleMerger.merge(input, spec: Self.spec(4, .dual), seed: 1)
        #expect(result.rank == 1)
        #expect(result.b.allSatisfy { $0 == 0 })
        #expect(result.stats.relativeError == 0)
    }
}

/// Thread-count independence: OpenBLAS's thread count is process-wide, so these run serialized and restore it.
@Suite(.serialized) struct ThreadCountIndependenceTests {
    @Test(arguments: [MergeMethodName.lego, .svd])
    func oneAndTwoBLASThreadsGiveIdenticalBytes(method: MergeMethodName) throws {
        let input = RandomModules.input(out: 384, in: 512, ranks: [16, 16, 16, 16, 16, 16, 16, 16], seed: 31)
        var options = LegoOptions()
        options.reweight = .optimal
        let spec = MergeSpec(method: method, rank: 16, lego: options)
        let original = BLAS.threadCount
        defer { BLAS.threadCount = original }
        BLAS.threadCount = 1
        let single = try ModuleMerger.merge(input, spec: spec, seed: 99)
        BLAS.threadCount = 2
        let double = try ModuleMerger.merge(input, spec: spec, seed: 99)
        let sameB = single.b.map(\.bitPattern) == double.b.map(\.bitPattern)
        let sameA = single.a.map(\.bitPattern) == double.a.map(\.bitPattern)
        #expect(sameB && sameA)
        #expect(single.stats == double.stats)
    }
}
