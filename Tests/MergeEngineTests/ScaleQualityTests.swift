import Foundation
import Testing
@testable import Kernels
@testable import MergeEngine

/// Pools above the old 2048-stacked-rank cap (many rank-1/2 adapters on small modules): svd by every route and
/// the quality figures of every kind of result equal dense references; `report: minimal` skips them, `report:
/// exact` forces exact figures, and a budget below the exact cost gives estimates with standard errors.
@Suite struct ScaleQualityTests {
    /// `count` adapters of ranks 1, 2, 1, 2, … whose factors decay with the adapter index (a spectrum with a
    /// gap, as trained pools have), so the top-k truncation is well defined.
    static func pool(out: Int, in inFeatures: Int, count: Int, seed: UInt64) -> ModuleInput {
        var input = RandomModules.input(out: out, in: inFeatures, ranks: (0..<count).map { 1 + $0 % 2 }, seed: seed)
        for index in input.terms.indices {
            let scale = Float(pow(0.995, Double(index)))
            input.terms[index].b = input.terms[index].b.map { $0 * scale }
        }
        return input
    }

    static func truncation(_ t: [Double], out: Int, in inFeatures: Int, rank k: Int) throws -> ([Double], [Float]) {
        let (u, s, vt) = try LinearAlgebra.svd(t.map { Float($0) }, rows: out, cols: inFeatures)
        let p = min(out, inFeatures)
        var truncated = [Double](repeating: 0, count: out * inFeatures)
        for r in 0..<k { for i in 0..<out { for j in 0..<inFeatures {
            truncated[i * inFeatures + j] += Double(u[i * p + r]) * Double(s[r]) * Double(vt[r * inFeatures + j])
        } } }
        return (truncated, s)
    }

    @Test(arguments: [(64, 96, 1400, 6), (128, 72, 1500, 4)])
    func svdEveryRouteAboveTheOldCap(out: Int, in inFeatures: Int, adapters: Int, rank: Int) throws {
        let input = Self.pool(out: out, in: inFeatures, count: adapters, seed: UInt64(out))
        #expect(input.totalRank > 2048)
        let target = RandomModules.target(input)
        let (expected, sigma) = try Self.truncation(target, out: out, in: inFeatures, rank: rank)
        let floor = TruncatedSVD.tailFraction(sigma, rank: rank)
        for route in ProductRoute.allCases {
            var result = try SVDMerge.merge(input, rank: rank, seed: 9, route: route)
            try ModuleQuality.fillStats(&result, input: input, seed: 9)
            #expect(result.stats.svdRoute == route.rawValue)
            // The contract (docs/kernels.md): error within 1e-4 of the floor on every route; the exact routes give
            // T_k itself, the Krylov route may differ in the factors where σ_k ≈ σ_{k+1} (this pool decays slowly).
            let actual = RandomModules.relativeError(RandomModules.dense(result), target)
            #expect(actual - floor <= StackedProduct.krylovTolerance && actual >= floor - 1e-6, "\(route)")
            if route != .krylov {
                #expect(RandomModules.relativeError(RandomModules.dense(result), expected) <= 1e-4, "\(route)")
            }
            #expect(abs(result.stats.relativeError - actual) <= 1e-4 * floor, "\(route)")
            #expect(abs((result.stats.svdFloor ?? -1) - floor) <= 1e-4 * floor, "\(route)")
        }
    }

    /// A result that is no truncation (a lego-like clustering stand-in): error and floor against dense T.
    @Test(arguments: [(64, 200, 1500, 8), (256, 64, 1400, 5)])
    func errorAndFloorOfAnyResultAboveTheOldCap(out: Int, in inFeatures: Int, adapters: Int, rank: Int) throws {
        let input = Self.pool(out: out, in: inFeatures, count: adapters, seed: UInt64(inFeatures))
        #expect(input.totalRank > 2048)
        var random = DeterministicRandom(seed: 4)
        var result = ModuleResult(name: input.name, rank: rank, outFeatures: out, inFeatures: inFeatures,
                                  b: (0..<(out * rank)).map { _ in Float(random.nextGaussian()) },
                                  a: (0..<(rank * inFeatures)).map { _ in Float(random.nextGaussian() * 0.3) },
                                  stats: ModuleStats(relativeError: -1))
        try ModuleQuality.fillStats(&result, input: input, seed: 2)
        let target = RandomModules.target(input)
        let expected = RandomModules.relativeError(RandomModules.dense(result), target)
        #expect(abs(result.stats.relativeError - expected) <= 1e-5 * expected)
        let sigma = try RandomModules.singularValues(target, out: out, in: inFeatures)
        #expect(abs((result.stats.svdFloor ?? -1) - TruncatedSVD.tailFraction(sigma, rank: rank)) <= 1e-4)
    }

    /// cat is exact by construction: its figures are 0 without any computation (also with `report: minimal`).
    @Test func catIsExactWithoutMeasuring() throws {
        let input = Self.pool(out: 32, in: 24, count: 40, seed: 1)
        for report in [nil, ReportLevel.minimal] {
            let result = try ModuleMerger.merge(input, spec: MergeSpec(method: .cat, rank: 4, report: report), seed: 0)
            #expect(result.stats.relativeError == 0 && result.stats.svdFloor == 0 && result.stats.qualityOmitted == nil)
            #expect(RandomModules.relativeError(RandomModules.dense(result), RandomModules.target(input)) < 1e-5)
        }
    }

    /// `report: minimal` leaves the figures unmeasured and says so; the merged factors are the same bytes.
    @Test(arguments: [MergeMethodName.svd, .lego, .ties])
    func minimalReportSkipsQuality(method: MergeMethodName) throws {
        let input = Self.pool(out: 40, in: 30, count: 30, seed: 2)
        let full = try ModuleMerger.merge(input, spec: MergeSpec(method: method, rank: 4), seed: 5)
        let minimal = try ModuleMerger.merge(input, spec: MergeSpec(method: method, rank: 4, report: .minimal), seed: 5)
        #expect(full.b == minimal.b && full.a == minimal.a)
        #expect(minimal.stats.qualityOmitted == true && full.stats.qualityOmitted == nil)
        #expect(full.stats.relativeError > 0 && full.stats.svdFloor != nil)
    }

    @Test func jobFileReportKey() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("brickyard-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let job = try JobSpec.parse(yaml: "method: svd\nreport: minimal\nadapters: [{path: a}]", baseDirectory: root,
                                    fileName: "job.yaml")
        #expect(job.report == .minimal)
        #expect(try MergeSpec.resolve(job: job, largestInputRank: 4).report == .minimal)
        let bad = try #require(throws: JobFileError.self) {
            try JobSpec.parse(yaml: "method: svd\nreport: terse\nadapters: [{path: a}]", baseDirectory: root,
                              fileName: "job.yaml")
        }
        #expect(bad.description.hasPrefix("job.yaml: report: unknown report level 'terse'"))
    }
}
