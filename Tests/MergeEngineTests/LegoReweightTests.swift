import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO
@testable import Kernels
@testable import MergeEngine

/// Pools for the reweighting properties: same-task soups (one update written in several gauges, plus noise) and
/// random invertible changes of an adapter's rank basis.
enum SoupPools {
    /// A random invertible r×r matrix and its inverse: R = H₁ H₂ D H₃ with Householder reflections H (their own
    /// inverses) and a diagonal D in ±[0.5, 2], so R⁻¹ = H₃ D⁻¹ H₂ H₁. Row-major Double.
    static func invertible(_ r: Int, random: inout DeterministicRandom) -> (matrix: [Double], inverse: [Double]) {
        func reflection() -> [Double] {
            var v = (0..<r).map { _ in random.nextGaussian() }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            return (0..<(r * r)).map { i in (i / r == i % r ? 1 : 0) - 2 * v[i / r] * v[i % r] }
        }
        let d = (0..<r).map { _ in (0.5 + 1.5 * random.nextUnitDouble()) * (random.nextIndex(below: 2) == 0 ? -1 : 1) }
        let diagonal = (0..<(r * r)).map { i in i / r == i % r ? d[i / r] : 0 }
        let inverseDiagonal = (0..<(r * r)).map { i in i / r == i % r ? 1 / d[i / r] : 0 }
        let (h1, h2, h3) = (reflection(), reflection(), reflection())
        return (multiply(multiply(multiply(h1, h2, r), diagonal, r), h3, r),
                multiply(multiply(multiply(h3, inverseDiagonal, r), h2, r), h1, r))
    }

    static func multiply(_ x: [Double], _ y: [Double], _ r: Int) -> [Double] {
        (0..<(r * r)).map { i in (0..<r).reduce(0) { $0 + x[(i / r) * r + $1] * y[$1 * r + i % r] } }
    }

    /// B·R (B row-major [out, r]) and R⁻¹·A (A row-major [r, in]).
    static func rewritten(b: [Float], a: [Float], out: Int, rank r: Int, in inFeatures: Int,
                          by basis: (matrix: [Double], inverse: [Double])) -> (b: [Float], a: [Float]) {
        var newB = [Float](repeating: 0, count: out * r), newA = [Float](repeating: 0, count: r * inFeatures)
        for i in 0..<out { for j in 0..<r {
            newB[i * r + j] = Float((0..<r).reduce(0) { $0 + Double(b[i * r + $1]) * basis.matrix[$1 * r + j] })
        } }
        for j in 0..<r { for c in 0..<inFeatures {
            newA[j * inFeatures + c] = Float((0..<r).reduce(0) { $0 + basis.inverse[j * r + $1] * Double(a[$1 * inFeatures + c]) })
        } }
        return (newB, newA)
    }

    /// `copies` adapters of one rank-r update (coefficient `c`), each in its own random basis, with relative
    /// noise `noise` on its factors before the change of basis; weights 1/copies.
    static func soup(out: Int, in inFeatures: Int, rank r: Int, copies: Int, noise: Double, seed: UInt64,
                     name: String = "model.layers.0.mlp.up_proj") -> (input: ModuleInput, original: ModuleInput) {
        var random = DeterministicRandom(seed: seed)
        let b = (0..<(out * r)).map { _ in Float(random.nextGaussian()) }
        let a = (0..<(r * inFeatures)).map { _ in Float(random.nextGaussian()) }
        let coefficient = 0.5 + random.nextUnitDouble()
        let terms = (0..<copies).map { _ in
            let noisyB = b.map { $0 + Float(noise * random.nextGaussian()) }
            let noisyA = a.map { $0 + Float(noise * random.nextGaussian()) }
            let basis = invertible(r, random: &random)
            let (newB, newA) = rewritten(b: noisyB, a: noisyA, out: out, rank: r, in: inFeatures, by: basis)
            return LoraTerm(coefficient: coefficient / Double(copies), rank: r, a: newA, b: newB)
        }
        let original = ModuleInput(name: name, outFeatures: out, inFeatures: inFeatures,
                                   terms: [LoraTerm(coefficient: coefficient, rank: r, a: a, b: b)])
        return (ModuleInput(name: name, outFeatures: out, inFeatures: inFeatures, terms: terms), original)
    }
}

@Suite struct LegoReweightTests {
    static func spec(_ rank: Int, _ reweight: LegoOptions.Reweight, basis: LegoOptions.Basis,
                     oversample: Int = LegoOptions.defaultOversample) -> MergeSpec {
        var options = LegoOptions()
        options.oversample = oversample
        options.reweight = reweight
        options.basis = basis
        return MergeSpec(method: .lego, rank: rank, lego: options)
    }

    /// 4 copies of one adapter, each written in another basis (B·R, R⁻¹·A), weights 1/4, merged at its rank
    /// with the DEFAULT options, give the adapter back.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func copiesInOtherBasesGiveBackTheAdapter(seed: UInt64) throws {
        let (input, original) = SoupPools.soup(out: 48, in: 40, rank: 6, copies: 4, noise: 0, seed: seed)
        let spec = MergeSpec(method: .lego, rank: 6)
        let result = try ModuleMerger.merge(input, spec: spec, seed: seed)
        let error = RandomModules.relativeError(RandomModules.dense(result), RandomModules.target(original))
        #expect(error <= 0.05)
        #expect(abs(error - result.stats.relativeError) < 1e-4)
        // The raw basis cannot see that these are the same units.
        let raw = try ModuleMerger.merge(input, spec: Self.spec(6, .dual, basis: .raw), seed: seed)
        #expect(raw.stats.relativeError > 0.05)
    }

    /// Random pools of independent units (nothing to cluster), k below the unit count: `dual` never does worse
    /// than the zero adapter, and `optimal` never worse than `dual`: on the same clusters (`oversample: 1`: least
    /// squares over them) and with the default options (these pools have fewer than 4 units per fine cluster, so
    /// the default clusters at k too: `LegoOptions.oversampleUnitsPerFineCluster`; before that rule, seed 11 gave
    /// 0.593 against dual's 0.574).
    @Test(arguments: Array(UInt64(0)..<12))
    func dualIsBoundedOnRandomPools(seed: UInt64) throws {
        var random = DeterministicRandom(seed: 500 + seed)
        let adapters = 2 + random.nextIndex(below: 7)
        let ranks = (0..<adapters).map { _ in [2, 4, 8][random.nextIndex(below: 3)] }
        let input = RandomModules.input(out: 24 + random.nextIndex(below: 48), in: 16 + random.nextIndex(below: 48),
                                        ranks: ranks, seed: 900 + seed)
        let k = max(1, ranks.reduce(0, +) / (2 + random.nextIndex(below: 4)))
        for basis in [LegoOptions.Basis.svd, .raw] {
            let dual = try ModuleMerger.merge(input, spec: Self.spec(k, .dual, basis: basis), seed: seed)
            let optimal = try ModuleMerger.merge(input, spec: Self.spec(k, .optimal, basis: basis, oversample: 1),
                                                 seed: seed)
            let byDefault = try ModuleMerger.merge(input, spec: Self.spec(k, .optimal, basis: basis), seed: seed)
            #expect(dual.stats.relativeError <= 1, "basis \(basis) k \(k) ranks \(ranks)")
            #expect(optimal.stats.relativeError <= dual.stats.relativeError * (1 + 1e-6) + 1e-7)
            #expect(dual.stats.clusterSizes == optimal.stats.clusterSizes)
            #expect(byDefault.stats.relativeError <= dual.stats.relativeError * (1 + 1e-6) + 1e-7,
                    "basis \(basis) k \(k) ranks \(ranks)")
            #expect(byDefault.stats.clusterSizes?.reduce(0, +) == dual.stats.clusterSizes?.reduce(0, +))
        }
    }

    /// Larger random pools, where the default oversamples (≥ 4 units per fine cluster): the default `optimal` is
    /// still never worse than `dual` on k-means' own clusters, and `dual` stays ≤ 1.
    @Test(arguments: Array(UInt64(0)..<8))
    func oversampledOptimalBeatsDualOnRandomPools(seed: UInt64) throws {
        var random = DeterministicRandom(seed: 700 + seed)
        let ranks = (0..<(8 + random.nextIndex(below: 9))).map { _ in [4, 8][random.nextIndex(below: 2)] }
        let input = RandomModules.input(out: 24 + random.nextIndex(below: 40), in: 16 + random.nextIndex(below: 40),
                                        ranks: ranks, seed: 950 + seed)
        let units = ranks.reduce(0, +)
        let k = min([2, 3, 4, 6, 8][random.nextIndex(below: 5)], units / 8)
        #expect(LegoOptions().clusteringCount(units: units, rank: k) == 2 * k)  // oversampling is on
        for basis in [LegoOptions.Basis.svd, .raw] {
            let dual = try ModuleMerger.merge(input, spec: Self.spec(k, .dual, basis: basis), seed: seed)
            let byDefault = try ModuleMerger.merge(input, spec: Self.spec(k, .optimal, basis: basis), seed: seed)
            #expect(dual.stats.relativeError <= 1)
            #expect(byDefault.stats.relativeError <= dual.stats.relativeError * (1 + 1e-6) + 1e-7,
                    "basis \(basis) k \(k) units \(units)")
        }
    }

    /// Same-task soups: N noisy copies of one update in unrelated bases, merged at its rank, weights 1/N.
    @Test(arguments: Array(UInt64(0)..<8))
    func dualIsBoundedOnSameTaskSoups(seed: UInt64) throws {
        let copies = 2 + Int(seed % 5)
        let (input, _) = SoupPools.soup(out: 40, in: 32, rank: 8, copies: copies, noise: 0.3, seed: 70 + seed)
        for basis in [LegoOptions.Basis.svd, .raw] {
            let dual = try ModuleMerger.merge(input, spec: Self.spec(8, .dual, basis: basis), seed: seed)
            #expect(dual.stats.relativeError <= 1, "basis \(basis) copies \(copies)")
        }
        // The canonical basis lines the copies up: close to the SVD floor, far below the raw basis.
        let canonical = try ModuleMerger.merge(input, spec: Self.spec(8, .dual, basis: .svd), seed: seed)
        let raw = try ModuleMerger.merge(input, spec: Self.spec(8, .dual, basis: .raw), seed: seed)
        let floor = canonical.stats.svdFloor ?? 0
        #expect(canonical.stats.relativeError >= floor - 1e-6)  // no rank-8 merge beats Eckart–Young
        #expect(canonical.stats.relativeError < raw.stats.relativeError)
        #expect(canonical.stats.relativeError < 0.4)
        // With little noise the copies' singular directions agree and the merge is near the floor.
        let (quiet, _) = SoupPools.soup(out: 40, in: 32, rank: 8, copies: copies, noise: 0.02, seed: 70 + seed)
        let close = try ModuleMerger.merge(quiet, spec: MergeSpec(method: .lego, rank: 8), seed: seed)
        #expect(close.stats.relativeError < (close.stats.svdFloor ?? 0) + 0.05)
    }

    /// `synth --shared-units 4k` pools merged at k: every module of every seed stays below 1 with `dual`,
    /// in both bases (the pool is written by the real generator and merged through the planner).
    @Test(arguments: [(UInt64(1), 4), (2, 4), (3, 8), (4, 2)])
    func dualIsBoundedOnSharedUnitPools(seed: UInt64, k: Int) throws {
        let scratch = try TestDirectory("shared-\(seed)")
        let pool = try SyntheticPool(shape: .tiny, adapterCount: 12, rank: 4, layers: 1, modules: ["q", "v", "up", "down"],
                                 dtype: .f32, seed: seed, rankSpread: seed % 2 == 0, sharedUnits: 4 * k)
        _ = try pool.write(to: scratch.path)
        var totals = (optimal: 0.0, dual: 0.0)
        defer { #expect(totals.optimal < totals.dual) }
        for basis in [LegoOptions.Basis.svd, .raw] {
            var job = JobSpec(method: .lego, rank: k, parameters: ["basis": .string(basis.rawValue)],
                              adapters: [AdapterEntry(path: scratch.path + "/*")], sourcePath: "shared.yaml")
            job.adapters = try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted()
                .map { AdapterEntry(path: scratch.path + "/" + $0) }
            let plan = try Planner.plan(job: job)
            var dualSpec = plan.spec
            dualSpec.lego.reweight = .dual
            for module in plan.modules {
                let result = try LocalMerge.mergeModule(module, spec: plan.spec)
                #expect(result.stats.relativeError <= 1, "\(module.name) basis \(basis)")
                #expect((result.stats.catchAllShare ?? -1) >= 0)
                #expect(result.stats.clusterCoherence?.count == result.rank)
                // The default (optimal, oversampled where the module has ≥ 4 units per fine cluster: k = 2 and 4
                // here) against dual on k-means' own clusters: below it in 31 of these 32 modules, by 0.01–0.15;
                // the exception (seed 4, k = 2, v_proj, raw: 0.723 vs 0.704) keeps one fine cluster of 4 and lumps
                // the rest, where k-means' two halves fit better. So: never 5% above dual, below it in total.
                let dual = try LocalMerge.mergeModule(module, spec: dualSpec)
                #expect(result.stats.relativeError <= 1.05 * dual.stats.relativeError, "\(module.name) \(basis) k \(k)")
                totals.optimal += result.stats.relativeError
                totals.dual += dual.stats.relativeError
            }
        }
    }

    /// Cluster coherence in the module stats: 1 for clusters of identical copies.
    @Test func identicalCopiesHaveCoherenceOne() throws {
        let one = RandomModules.input(out: 30, in: 20, ranks: [5], coefficients: [1.0], seed: 3)
        var input = one
        input.terms = (0..<4).map { _ in var t = one.terms[0]; t.coefficient = 0.25; return t }
        let result = try ModuleMerger.merge(input, spec: Self.spec(5, .dual, basis: .raw), seed: 1)
        for rho in result.stats.clusterCoherence ?? [] { #expect(abs(rho - 1) < 1e-5) }
        #expect(result.stats.catchAllShare == 0)
    }
}

/// `scale` multiplies every method's merged update: output(scale) = scale × output(1), quality figures unchanged.
@Suite struct ScaleTests {
    @Test(arguments: MergeMethodName.allCases, [2.5, -0.5])
    func scaleMultipliesTheUpdate(method: MergeMethodName, scale: Double) throws {
        let input = RandomModules.input(out: 20, in: 16, ranks: [4, 4, 4], coefficients: [0.5, 0.3, 0.2], seed: 12)
        let base = MergeSpec(method: method, rank: 4)
        var scaled = base
        scaled.scale = scale
        let one = try ModuleMerger.merge(input, spec: base, seed: 5)
        let many = try ModuleMerger.merge(input, spec: scaled, seed: 5)
        let expected = RandomModules.dense(one).map { $0 * scale }
        #expect(RandomModules.relativeError(RandomModules.dense(many), expected) < 1e-5)
        #expect(many.stats.relativeError == one.stats.relativeError)
    }

    @Test func jobFileReadsAndValidatesScale() throws {
        let scratch = try TestDirectory("scale")
        let adapter = PeftTinyFixtures.adapter("a_r8")
        let job = try JobSpec.parse(yaml: "method: cat\nscale: 1.5\nadapters:\n  - path: \(adapter)\n", baseDirectory: scratch.path)
        #expect(job.scale == 1.5)
        #expect(try MergeSpec.resolve(job: job, largestInputRank: 8).scale == 1.5)
        let defaulted = try JobSpec.parse(yaml: "method: cat\nadapters:\n  - path: \(adapter)\n", baseDirectory: scratch.path)
        #expect(defaulted.scale == 1)
        for bad in ["0", "\"big\"", ".nan"] {
            #expect(throws: JobFileError.self) {
                _ = try JobSpec.parse(yaml: "method: cat\nscale: \(bad)\nadapters:\n  - path: \(adapter)\n",
                                      baseDirectory: scratch.path, fileName: "s.yaml")
            }
        }
        do {
            _ = try JobSpec.parse(yaml: "method: cat\nscale: 0\nadapters:\n  - path: \(adapter)\n",
                                  baseDirectory: scratch.path, fileName: "s.yaml")
        } catch let error as JobFileError {
            #expect(error.description.hasPrefix("s.yaml: scale: "))
        }
    }

    /// The report records the scale, and `scale` in the written adapter is the product of the two runs.
    @Test func reportRecordsScale() throws {
        let scratch = try TestDirectory("scale-report")
        var job = JobSpec.fixtureJob(.svd, adapters: ["a_r8", "b_r4"], rank: 4)
        job.scale = 2
        let report = try LocalMerge.run(plan: try Planner.plan(job: job), outputDirectory: scratch.file("out"))
        #expect(report.job.scale == 2)
        let decoded = try MergeReport.decode(try Data(contentsOf: URL(fileURLWithPath: scratch.file("out/merge-report.json"))))
        #expect(decoded.job.scale == 2)
    }
}

/// The CLI's quality warnings, from the report.
@Suite struct QualityWarningTests {
    @Test func warnsAboutErrorsAboveOneAndCatchAllClusters() throws {
        let scratch = try TestDirectory("warnings")
        let pool = try SyntheticPool(shape: .tiny, adapterCount: 8, rank: 8, layers: 1, modules: ["q", "v"], dtype: .f32,
                                     seed: 5)
        _ = try pool.write(to: scratch.path)
        let adapters = try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted()
            .map { AdapterEntry(path: scratch.path + "/" + $0) }
        func report(_ reweight: String, basis: String = "svd") throws -> MergeReport {
            let job = JobSpec(method: .lego, rank: 4, parameters: ["reweight": .string(reweight), "basis": .string(basis)],
                              adapters: adapters, sourcePath: "w.yaml")
            return try LocalMerge.run(plan: try Planner.plan(job: job), outputDirectory: scratch.file("out-\(reweight)-\(basis)"))
        }
        // Independent units at a rank far below the pool's: `sum` explodes, clusters are catch-alls.
        let exploded = try report("sum", basis: "raw")
        #expect(exploded.modules.allSatisfy { $0.relativeError > 1 })
        let warnings = exploded.qualityWarnings
        #expect(warnings.count == 2)
        #expect(warnings.first?.contains("reweight: dual") == true)
        #expect(warnings.last?.contains("basis: svd") == true)
        let decoded = try MergeReport.decode(try Data(contentsOf: URL(fileURLWithPath: scratch.file("out-sum-raw/merge-report.json"))))
        #expect(decoded.modules.allSatisfy { ($0.catchAllShare ?? 0) > 0.5 && $0.clusterCoherence?.count == 4 })
        let bounded = try report("dual")
        #expect(bounded.modules.allSatisfy { $0.relativeError <= 1 })
        #expect(bounded.qualityWarnings.allSatisfy { !$0.contains("above 1") })
    }

    /// `scripts/demo`'s pool (16 adapters of ranks 4-16 drawn from 16 shared directions, rank 16): lego's default
    /// leaves catch-all clusters in most modules, yet its refit fits T to the SVD floor, so no warning tells the user
    /// to raise the rank or use svd (neither would do better). The same shares with an error above the floor warn.
    @Test func catchAllClustersAtTheFloorDoNotWarn() throws {
        let scratch = try TestDirectory("warnings-floor")
        let pool = try SyntheticPool(shape: .tiny, adapterCount: 16, rank: 8, layers: 1, modules: ["k", "gate"],
                                     dtype: .f32, seed: 1, rankSpread: true, sharedUnits: 16)
        _ = try pool.write(to: scratch.path)
        let adapters = try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted()
            .map { AdapterEntry(path: scratch.path + "/" + $0) }
        let job = JobSpec(method: .lego, rank: 16, parameters: [:], adapters: adapters, sourcePath: "d.yaml")
        var report = try LocalMerge.run(plan: try Planner.plan(job: job), outputDirectory: scratch.file("out"))
        #expect(report.modules.contains { ($0.catchAllShare ?? 0) > 0.5 })
        #expect(report.modules.allSatisfy { $0.relativeError - ($0.svdFloor ?? 1) < 0.01 })
        #expect(report.qualityWarnings.isEmpty)
        // The same clusters with an error 0.2 above the floor (or no floor measured: `report: minimal`) warn.
        for index in report.modules.indices { report.modules[index].relativeError += 0.2 }
        #expect(report.qualityWarnings.count == 1 && report.qualityWarnings[0].contains("incoherent clusters"))
        for index in report.modules.indices {
            report.modules[index].relativeError = 0
            report.modules[index].svdFloor = nil
            report.modules[index].qualityOmitted = true
        }
        #expect(report.qualityWarnings.count == 1)
    }
}

/// `basis: auto` keeps, per module, the basis whose clusters explain more of the units.
@Suite struct AutoBasisTests {
    static func spec(_ rank: Int) -> MergeSpec {
        var options = LegoOptions()
        options.basis = .auto
        return MergeSpec(method: .lego, rank: rank, lego: options)
    }

    /// Copies of one adapter in random bases: only the svd basis lines them up.
    @Test func picksTheCanonicalBasisForCopiesInOtherBases() throws {
        let (input, original) = SoupPools.soup(out: 48, in: 40, rank: 6, copies: 4, noise: 0, seed: 21)
        let result = try ModuleMerger.merge(input, spec: Self.spec(6), seed: 2)
        #expect(result.stats.basis == "svd")
        #expect(RandomModules.relativeError(RandomModules.dense(result), RandomModules.target(original)) <= 0.05)
    }

    /// Units planted as the stored columns (shared directions, each adapter's units not orthogonal to each
    /// other): the raw basis keeps them apart, the svd basis mixes them.
    @Test(arguments: [UInt64(1), 2])
    func picksTheStoredBasisForPlantedUnits(seed: UInt64) throws {
        let (out, inFeatures, directions, adapters, r) = (24, 20, 6, 10, 3)
        var random = DeterministicRandom(seed: seed)
        let bases = (0..<directions).map { _ in
            ((0..<out).map { _ in Float(random.nextGaussian()) }, (0..<inFeatures).map { _ in Float(random.nextGaussian()) })
        }
        let terms = (0..<adapters).map { i in
            var a = [Float](), b = [Float](repeating: 0, count: out * r)
            for j in 0..<r {
                let (bb, aa) = bases[(i + 2 * j) % directions]
                let scale = Float(0.6 + 0.8 * random.nextUnitDouble())
                for row in 0..<out { b[row * r + j] = scale * bb[row] }
                a += aa
            }
            return LoraTerm(coefficient: 1.0 / Double(adapters), rank: r, a: a, b: b)
        }
        let input = ModuleInput(name: "m", outFeatures: out, inFeatures: inFeatures, terms: terms)
        let result = try ModuleMerger.merge(input, spec: Self.spec(directions), seed: seed)
        #expect(result.stats.basis == "raw")
        #expect(result.stats.relativeError < 1e-3)
    }
}
