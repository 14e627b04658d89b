import Testing
@testable import MergeEngine

/// The `restarts` lego option: default, validation with one-line errors naming the job file and key, and the
/// report's options.
@Suite struct LegoRestartsTests {
    static func job(_ parameters: [String: ParameterValue]) -> JobSpec {
        JobSpec(method: .lego, parameters: parameters, adapters: [AdapterEntry(path: "/pool/a")],
                sourcePath: "/jobs/job.yaml")
    }

    @Test func defaultIsThreeAndReported() throws {
        let spec = try MergeSpec.resolve(job: Self.job([:]), largestInputRank: 8)
        #expect(spec.lego.restarts == 3)
        #expect(MergeReport.Options(spec).restarts == 3)
        let svd = try MergeSpec.resolve(job: JobSpec(method: .svd, adapters: [AdapterEntry(path: "/pool/a")]),
                                        largestInputRank: 8)
        #expect(MergeReport.Options(svd).restarts == nil)
    }

    @Test(arguments: [(ParameterValue.int(1), 1), (.int(7), 7), (.double(2), 2)])
    func acceptedValues(value: ParameterValue, expected: Int) throws {
        let spec = try MergeSpec.resolve(job: Self.job(["restarts": value]), largestInputRank: 8)
        #expect(spec.lego.restarts == expected)
    }

    @Test(arguments: [ParameterValue.int(0), .int(-2), .double(1.5), .string("three"), .bool(true)])
    func rejectedValuesAreOneLineErrors(value: ParameterValue) {
        let error = #expect(throws: MergeError.self) {
            _ = try MergeSpec.resolve(job: Self.job(["restarts": value]), largestInputRank: 8)
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("job.yaml"))
        #expect(text.contains("parameters.restarts"))
        #expect(!text.contains("\n"))
    }

    /// More restarts never give a module a larger clustering objective (restart 0 is the module seed's own run).
    @Test(arguments: [UInt64(1), 2, 3])
    func moreRestartsNeverRaiseTheDistance(seed: UInt64) throws {
        let input = RandomModules.input(out: 30, in: 20, ranks: [6, 6, 6, 6], seed: 40 + seed)
        var one = LegoOptions(), several = LegoOptions()
        one.restarts = 1
        several.restarts = 4
        let single = try ModuleMerger.merge(input, spec: MergeSpec(method: .lego, rank: 8, lego: one), seed: seed)
        let best = try ModuleMerger.merge(input, spec: MergeSpec(method: .lego, rank: 8, lego: several), seed: seed)
        #expect((best.stats.finalDistance ?? 0) <= (single.stats.finalDistance ?? 0))
        let again = try ModuleMerger.merge(input, spec: MergeSpec(method: .lego, rank: 8, lego: several), seed: seed)
        #expect(again.b.map(\.bitPattern) == best.b.map(\.bitPattern))
        #expect(again.a.map(\.bitPattern) == best.a.map(\.bitPattern))
    }
}
