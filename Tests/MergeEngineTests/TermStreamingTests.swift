import BrickyardTestSupport
import AdapterIO
import Foundation
import Kernels
@testable import MergeEngine
import Testing

/// Modules merged from a `ModuleTermSource` that reads one adapter at a time from its file (f32 and bf16
/// fixtures) give the bytes of the same merge on the input loaded whole.
@Suite struct TermStreamingTests {
    static let adapters = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]

    @Test("lego streamed from the files (f32 and bf16 inputs) equals lego on the loaded input, every module",
          arguments: ["full", "minimal"], ["svd", "raw", "auto"])
    func legoStreamedEqualsLoaded(report: String, basis: String) throws {
        var job = JobSpec.fixtureJob(.lego, adapters: Self.adapters, rank: 3,
                                     parameters: ["basis": .string(basis)])
        job.report = report == "minimal" ? .minimal : .full
        let plan = try Planner.plan(job: job)
        #expect(plan.modules.flatMap(\.sources).contains { $0.module.a.dtype == .bf16 })
        #expect(plan.modules.flatMap(\.sources).contains { $0.module.a.dtype == .f32 })
        for module in plan.modules {
            let loaded = try module.loadInput()
            let reference = try ModuleMerger.merge(loaded, spec: plan.spec, seed: module.seed)
            let streamed = try ModuleMerger.merge(module.termSource(), spec: plan.spec, seed: module.seed)
            #expect(streamed.b == reference.b, "module \(module.name)")
            #expect(streamed.a == reference.a, "module \(module.name)")
            #expect(streamed.rank == reference.rank)
            #expect(streamed.stats == reference.stats || (streamed.stats.relativeError.isNaN && reference.stats.relativeError.isNaN))
        }
    }

    @Test("a term source reads each term from its file: loadAll equals loadInput, term by term")
    func sourceTermsEqualLoadedInput() throws {
        let plan = try Planner.plan(job: JobSpec.fixtureJob(.cat, adapters: Self.adapters))
        for module in plan.modules {
            let source = module.termSource()
            let loaded = try module.loadInput()
            #expect(source.ranks == loaded.terms.map(\.rank))
            for index in loaded.terms.indices {
                let term = try source.term(index)
                #expect(term.a == loaded.terms[index].a && term.b == loaded.terms[index].b)
                #expect(term.coefficient == loaded.terms[index].coefficient)
            }
        }
    }

    @Test("every method gives the same bytes from a term source as from the loaded input",
          arguments: [MergeMethodName.cat, .svd, .ties, .lego])
    func everyMethodThroughSource(method: MergeMethodName) throws {
        let plan = try Planner.plan(job: JobSpec.fixtureJob(method, adapters: Self.adapters, rank: 4))
        for module in plan.modules {
            let reference = try ModuleMerger.merge(module.loadInput(), spec: plan.spec, seed: module.seed)
            let streamed = try ModuleMerger.merge(module.termSource(), spec: plan.spec, seed: module.seed)
            #expect(streamed.b == reference.b && streamed.a == reference.a, "\(method) \(module.name)")
        }
    }

    @Test("a file that shrank after planning gives an error naming it, from the streamed path too")
    func truncatedFileIsAnError() throws {
        let scratch = try TestDirectory("stream-truncated")
        let copy = scratch.file("e_bf16")
        try FileManager.default.copyItem(atPath: PeftTinyFixtures.adapter("e_bf16"), toPath: copy)
        var job = JobSpec.fixtureJob(.lego, adapters: ["a_r8"], rank: 2)
        job.adapters.append(AdapterEntry(path: copy, weight: 1))
        let plan = try Planner.plan(job: job)
        let module = try #require(plan.modules.first { $0.sources.count == 2 })
        let ref = module.sources[1].module.a
        #expect(truncate(ref.path, off_t(ref.byteOffset + 1)) == 0)
        #expect(throws: AdapterIOError.self) {
            try ModuleMerger.merge(module.termSource(), spec: plan.spec, seed: module.seed)
        }
    }
}
