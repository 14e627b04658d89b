import Testing
@testable import Kernels
@testable import MergeEngine

/// lego's `init`: `kmeans++` (greedy seeding, the default) or `kmeans||` (`KMeansOptions.seedingRounds` 2) reach
/// the k-means with that seeding, byte-identical on every run; other values are rejected with the choices named.
@Suite struct LegoSeedingTests {
    @Test(arguments: [("kmeans++", 0), ("kmeans||", 2)])
    func initChoosesTheSeeding(name: String, rounds: Int) throws {
        let job = JobSpec(method: .lego, parameters: ["init": .string(name), "oversample": .int(1), "refit": .int(0),
                                                     "iterations": .int(15), "tolerance": .int(0), "restarts": .int(1)],
                          adapters: [], sourcePath: "p.yaml")
        let spec = try MergeSpec.resolve(job: job, largestInputRank: 4)
        #expect(spec.lego.initialization.rawValue == name)
        #expect(spec.lego.initialization.seedingRounds == rounds)
        // 16 adapters of rank 4: 64 units, k = 4, so k-means|| applies (≥ 8 units per cluster).
        let input = RandomModules.input(out: 24, in: 20, ranks: [Int](repeating: 4, count: 16), seed: 61)
        let spec4 = MergeSpec(method: .lego, rank: 4, lego: spec.lego)
        let first = try ModuleMerger.merge(input, spec: spec4, seed: 9)
        let second = try ModuleMerger.merge(input, spec: spec4, seed: 9)
        #expect(first.b.map(\.bitPattern) == second.b.map(\.bitPattern))
        #expect(first.a.map(\.bitPattern) == second.a.map(\.bitPattern))
        // The clustering the merge ran is the k-means with this seeding (and not the other one's, on this pool).
        let units = try RankOneUnits.extract(terms: try input.factorTerms(), outFeatures: 24, inFeatures: 20,
                                             gauge: .balanced, basis: .svd)
        func clustering(_ seedingRounds: Int) throws -> KMeansResult {
            try SignInvariantKMeans.cluster(units: units.vectors, count: units.count, dimension: units.dimension, k: 4,
                                            options: KMeansOptions(iterations: 15, tolerance: 0, restarts: 1,
                                                                   seedingRounds: seedingRounds), seed: 9)
        }
        #expect(KMeansOptions(seedingRounds: rounds).seedsInParallel(count: units.count, k: 4) == (rounds > 0))
        let own = try clustering(rounds), other = try clustering(rounds == 0 ? 2 : 0)
        #expect(first.stats.finalDistance?.bitPattern == own.finalObjective.bitPattern)
        #expect(own.finalObjective.bitPattern != other.finalObjective.bitPattern)
    }

    @Test func otherInitValuesAreRejected() {
        let job = JobSpec(method: .lego, parameters: ["init": .string("random")], adapters: [], sourcePath: "p.yaml")
        #expect {
            try MergeSpec.resolve(job: job, largestInputRank: 4)
        } throws: { error in
            "\(error)".contains("kmeans++") && "\(error)".contains("kmeans||") && "\(error)".contains("init")
        }
    }
}
