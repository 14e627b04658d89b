import Testing
@testable import Kernels
@testable import MergeEngine

/// lego's `balance` (T̃ = Σ_t T_t/‖T_t‖^p chooses the ranks, T fits them): an adapter whose update is small in a
/// module keeps its main directions; 0 is the previous behaviour; the result is never worse than its own subspaces
/// allow (the core fit).
@Suite struct LegoBalanceTests {
    static func spec(rank: Int, balance: Double, refit: Int = LegoOptions.defaultRefit) -> MergeSpec {
        var options = LegoOptions()
        options.balance = balance
        options.refit = refit
        return MergeSpec(method: .lego, rank: rank, lego: options)
    }

    /// A large adapter (σ = 10, 9, 8, 7 on e1…e4) and a small one (σ = 0.5, 0.4 on e5, e6), orthogonal: T's best
    /// rank 4 is the large adapter alone; with `balance: 1` a direction counts by its share of its own adapter's
    /// update (10/17.1 … 7/17.1 against 0.5/0.64, 0.4/0.64), so the small adapter keeps both its directions and the
    /// large one its two strongest, each at its true value.
    static func pool() -> ModuleInput {
        let (out, inFeatures) = (12, 10)
        var bigB = [Float](repeating: 0, count: out * 4), bigA = [Float](repeating: 0, count: 4 * inFeatures)
        for (t, sigma) in [Float(10), 9, 8, 7].enumerated() { bigB[t * 4 + t] = sigma; bigA[t * inFeatures + t] = 1 }
        var smallB = [Float](repeating: 0, count: out * 2), smallA = [Float](repeating: 0, count: 2 * inFeatures)
        for (t, sigma) in [Float(0.5), 0.4].enumerated() {
            smallB[(4 + t) * 2 + t] = sigma; smallA[t * inFeatures + 4 + t] = 1
        }
        return ModuleInput(name: "model.layers.0.self_attn.q_proj", outFeatures: out, inFeatures: inFeatures,
                           terms: [LoraTerm(coefficient: 1, rank: 4, a: bigA, b: bigB),
                                   LoraTerm(coefficient: 1, rank: 2, a: smallA, b: smallB)])
    }

    @Test func aSmallAdapterKeepsItsDirections() throws {
        let input = Self.pool()
        let diagonal = { (result: ModuleResult) in
            let m = Dense.product(result)
            return (0..<6).map { m[$0 * input.inFeatures + $0] }
        }
        let balanced = try ModuleMerger.merge(input, spec: Self.spec(rank: 4, balance: 1), seed: 1)
        let kept = diagonal(balanced)
        for (got, want) in zip(kept, [10.0, 9, 0, 0, 0.5, 0.4]) { #expect(abs(got - want) < 1e-4) }
        let plain = try ModuleMerger.merge(input, spec: Self.spec(rank: 4, balance: 0), seed: 1)
        for (got, want) in zip(diagonal(plain), [10.0, 9, 8, 7, 0, 0]) { #expect(abs(got - want) < 1e-4) }
        // Off the diagonal nothing: the core fit reproduces T inside the chosen directions.
        let expected = Dense.target(input).enumerated().map { i, v in
            let (r, c) = (i / input.inFeatures, i % input.inFeatures)
            return r == c && [0, 1, 4, 5].contains(r) ? v : 0
        }
        #expect(Dense.relativeError(Dense.product(balanced), expected) < 1e-4)
    }

    /// Modules that do not select units (`small_pool: kmeans`, past the oversample gate, k ≥ units) ignore
    /// `balance`: the same bytes as 0.
    @Test(arguments: [4, 6, 9])
    func balanceOnlyActsWhereUnitsAreSelected(rank: Int) throws {
        let input = Dense.randomInput(out: 14, in: 11, ranks: [3, 3], coefficients: [1, 0.3], seed: 8)
        var kmeans = Self.spec(rank: rank, balance: 1)
        kmeans.lego.smallPool = .kmeans
        var kmeansPlain = kmeans
        kmeansPlain.lego.balance = 0
        let a = try ModuleMerger.merge(input, spec: kmeans, seed: 2), b = try ModuleMerger.merge(input, spec: kmeansPlain, seed: 2)
        #expect(a.b == b.b && a.a == b.a)
        // Past the oversample gate (≥ 4·2·k units: k-means into 2k fine clusters, as on the 960-adapter pool).
        let large = Dense.randomInput(out: 14, in: 11, ranks: [8, 8], coefficients: [1, 0.3], seed: 9)
        let c = try ModuleMerger.merge(large, spec: Self.spec(rank: 2, balance: 1), seed: 2)
        let d = try ModuleMerger.merge(large, spec: Self.spec(rank: 2, balance: 0), seed: 2)
        #expect(c.b == d.b && c.a == d.a && c.stats.oversample == 2)
        let selected = try ModuleMerger.merge(input, spec: Self.spec(rank: rank, balance: 1), seed: 2)
        if rank >= 6 {  // k ≥ units: exact whatever the balance
            #expect(Dense.relativeError(Dense.product(selected), Dense.target(input)) < 1e-5)
        }
    }

    /// On random pools of unequal adapters the balanced result (T projected onto the chosen subspaces) lies between
    /// the SVD floor and 1 (never worse than no adapter).
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func balancedErrorIsBetweenTheFloorAndOne(seed: UInt64) throws {
        let input = Dense.randomInput(out: 20, in: 16, ranks: [4, 4, 4], coefficients: [1, 0.2, 0.05], seed: seed)
        let result = try ModuleMerger.merge(input, spec: Self.spec(rank: 4, balance: 1), seed: seed)
        let error = Dense.relativeError(Dense.product(result), Dense.target(input))
        #expect(error < 1)  // ‖T − P_U T P_V‖² = ‖T‖² − ‖P_U T P_V‖²
        let t = Dense.target(input)
        let s = try LinearAlgebra.svd(t.map { Float($0) }, rows: 20, cols: 16).s.map(Double.init)
        let floor = (s[4...].reduce(0) { $0 + $1 * $1 } / s.reduce(0) { $0 + $1 * $1 }).squareRoot()
        #expect(error >= floor - 1e-4)
    }

    /// Orthonormal basis (Gram–Schmidt, Double) of the given vectors' span; dependent ones dropped.
    static func basis(_ vectors: [[Double]]) -> [[Double]] {
        var out: [[Double]] = []
        for var v in vectors {
            for q in out { let dot = zip(v, q).reduce(0) { $0 + $1.0 * $1.1 }; v = zip(v, q).map { $0 - dot * $1 } }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 1e-9 { out.append(v.map { $0 / norm }) }
        }
        return out
    }

    /// What of term t's update the result's subspaces miss: ‖T_t − P_U T_t P_V‖/‖T_t‖.
    static func missedShare(of term: LoraTerm, in result: ModuleResult, out: Int, in inFeatures: Int) -> Double {
        let k = result.rank
        let u = basis((0..<k).map { s in (0..<out).map { Double(result.b[$0 * k + s]) } })
        let v = basis((0..<k).map { s in (0..<inFeatures).map { Double(result.a[s * inFeatures + $0]) } })
        let t = Dense.product(b: term.b, a: term.a, out: out, rank: term.rank, in: inFeatures, coefficient: term.coefficient)
        // C = Uᵀ T V; ‖P_U T P_V‖ = ‖C‖.
        var kept = 0.0
        for p in u { for q in v {
            var c = 0.0
            for r in 0..<out where p[r] != 0 { for j in 0..<inFeatures { c += p[r] * t[r * inFeatures + j] * q[j] } }
            kept += c * c
        } }
        let total = t.reduce(0) { $0 + $1 * $1 }
        return (max(0, total - kept) / total).squareRoot()
    }

    /// Task-like pools (3 rank-8 adapters with decaying spectra, one 5× weaker, A halves sharing part of one input
    /// subspace), merged at 8: the default (`balance: 0.5`) misses less of the weak adapter's update than `balance:
    /// 0` (T's fit, which spends the ranks on the strong adapters), summed over seeds; and its error on T stays
    /// between the SVD floor and 1.
    @Test func theDefaultKeepsMoreOfAWeakAdapter() throws {
        let (out, inFeatures, r) = (48, 40, 8)
        var missed = (balanced: 0.0, plain: 0.0)
        for seed in UInt64(0)..<6 {
            var random = DeterministicRandom(seed: 2000 + seed)
            let terms = TaskLikePools.terms(random: &random, out: out, inFeatures: inFeatures, rank: r,
                                            weakStrength: 0.2)
            let input = ModuleInput(name: "m", outFeatures: out, inFeatures: inFeatures, terms: terms)
            #expect(LegoOptions().balance == 0.5 && LegoOptions().selectsUnits(units: 24, rank: r))
            let balanced = try ModuleMerger.merge(input, spec: MergeSpec(method: .lego, rank: r), seed: seed)
            let plain = try ModuleMerger.merge(input, spec: Self.spec(rank: r, balance: 0), seed: seed)
            missed.balanced += Self.missedShare(of: terms[1], in: balanced, out: out, in: inFeatures)
            missed.plain += Self.missedShare(of: terms[1], in: plain, out: out, in: inFeatures)
            let error = Dense.relativeError(Dense.product(balanced), Dense.target(input))
            #expect(error < 1 && error >= (balanced.stats.svdFloor ?? 0) - 1e-5)
        }
        #expect(missed.balanced < missed.plain, "weak adapter missed: default \(missed.balanced), balance 0 \(missed.plain)")
    }
}
