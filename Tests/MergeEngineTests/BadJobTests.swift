import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO
@testable import MergeEngine

/// Every bad job is one clear error naming the job file and key, and nothing is written.
@Suite struct BadJobTests {
    static let fixtures = PeftTinyFixtures.root.appendingPathComponent("adapters").path

    /// (name, YAML body after `adapters`-independent keys, text the error must contain)
    static let cases: [(String, String, String)] = [
        ("unknown method", "method: blend\nadapters:\n  - path: a_r8\n", "method"),
        ("unknown lego option", "method: lego\nparameters:\n  temperature: 2\nadapters:\n  - path: a_r8\n", "parameters.temperature"),
        ("option of another method", "method: ties\nparameters:\n  iterations: 3\nadapters:\n  - path: a_r8\n", "parameters.iterations"),
        ("majority_sign on dare_linear", "method: dare_linear\nparameters:\n  majority_sign: total\nadapters:\n  - path: a_r8\n", "parameters.majority_sign"),
        ("options for cat", "method: cat\nparameters:\n  density: 0.5\nadapters:\n  - path: a_r8\n", "parameters.density"),
        ("rank zero", "method: svd\nrank: 0\nadapters:\n  - path: a_r8\n", "rank"),
        ("density zero", "method: ties\nparameters:\n  density: 0\nadapters:\n  - path: a_r8\n", "parameters.density"),
        ("density above one", "method: magnitude_prune\nparameters:\n  density: 1.5\nadapters:\n  - path: a_r8\n", "parameters.density"),
        ("density not a number", "method: dare_ties\nparameters:\n  density: lots\nadapters:\n  - path: a_r8\n", "parameters.density"),
        ("bad reweight", "method: lego\nparameters:\n  reweight: maybe\nadapters:\n  - path: a_r8\n", "parameters.reweight"),
        ("iterations zero", "method: lego\nparameters:\n  iterations: 0\nadapters:\n  - path: a_r8\n", "parameters.iterations"),
        ("negative tolerance", "method: lego\nparameters:\n  tolerance: -1\nadapters:\n  - path: a_r8\n", "parameters.tolerance"),
        ("iterations not an integer", "method: lego\nparameters:\n  iterations: 2.5\nadapters:\n  - path: a_r8\n", "parameters.iterations"),
        ("restarts zero", "method: lego\nparameters:\n  restarts: 0\nadapters:\n  - path: a_r8\n", "parameters.restarts: must be at least 1, got 0"),
        ("oversample above 64", "method: lego\nparameters:\n  oversample: 65\nadapters:\n  - path: a_r8\n", "parameters.oversample: must be in 1…64, got 65"),
        ("negative refit", "method: lego\nparameters:\n  refit: -1\nadapters:\n  - path: a_r8\n", "parameters.refit: must be in 0…64, got -1"),
        ("balance_rounds above 64", "method: lego\nparameters:\n  balance_rounds: 65\nadapters:\n  - path: a_r8\n", "parameters.balance_rounds: must be in 0…64, got 65"),
        ("balance above one", "method: lego\nparameters:\n  balance: 1.5\nadapters:\n  - path: a_r8\n", "parameters.balance: must be in 0…1, got 1.5"),
        ("weights sum to zero", "method: cat\nadapters:\n  - path: a_r8\n    weight: 1\n  - path: b_r4\n    weight: -1\n", "normalize"),
        ("linear with unequal ranks", "method: linear\nadapters:\n  - path: a_r8\n  - path: b_r4\n", "linear"),
    ]

    @Test(arguments: cases)
    func badJobIsOneLineErrorAndWritesNothing(name: String, yaml: String, mention: String) throws {
        let scratch = try TestDirectory("badjob")
        let jobPath = scratch.file("job.yaml")
        try yaml.write(toFile: jobPath, atomically: true, encoding: .utf8)
        for adapter in ["a_r8", "b_r4"] {
            try FileManager.default.createSymbolicLink(atPath: scratch.file(adapter), withDestinationPath: PeftTinyFixtures.adapter(adapter))
        }
        let out = scratch.file("out")
        let error = #expect(throws: (any Error).self) {
            let plan = try Planner.plan(job: JobSpec.load(path: jobPath))
            try LocalMerge.run(plan: plan, outputDirectory: out)
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(mention), "\(name): \(text)")
        #expect(text.contains("job.yaml"), "\(name): \(text)")
        #expect(!text.contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["a_r8", "b_r4", "job.yaml"])
    }

    /// Two adapters with a module of the same name but different shapes: the error names both adapters.
    @Test func sameModuleDifferentShapesNamesBothAdapters() throws {
        func module(_ name: String, out: Int, in inFeatures: Int, path: String) -> LoraModuleInfo {
            let a = TensorRef(path: path, dtype: .f32, shape: [4, inFeatures], byteOffset: 0, byteCount: 16 * inFeatures)
            let b = TensorRef(path: path, dtype: .f32, shape: [out, 4], byteOffset: 0, byteCount: 16 * out)
            return LoraModuleInfo(name: name, rank: 4, alpha: 4, scaling: 1, inFeatures: inFeatures, outFeatures: out, a: a, b: b)
        }
        let job = JobSpec(method: .cat, adapters: [AdapterEntry(path: "/pool/one"), AdapterEntry(path: "/pool/two")],
                          sourcePath: "shapes.yaml")
        let error = #expect(throws: MergeError.self) {
            _ = try Planner.plan(job: job) { entry in
                LoadedAdapter(path: entry.path, modules: [module("m.q_proj", out: 8, in: entry.path.hasSuffix("one") ? 16 : 32, path: entry.path)])
            }
        }
        let text = error?.description ?? ""
        #expect(text.contains("/pool/one") && text.contains("/pool/two") && text.contains("m.q_proj") && text.contains("shapes.yaml"))
    }

    @Test func emptyPoolIsAnError() {
        let job = JobSpec(method: .cat, adapters: [], sourcePath: "empty.yaml")
        #expect(throws: MergeError.self) { _ = try Planner.plan(job: job) { _ in LoadedAdapter(path: "", modules: []) } }
    }

    /// An output whose parent is a file is refused before any work (it used to fail after the merge, naming the
    /// staging directory's temporary path).
    @Test func outputUnderAFileIsRefusedUpFront() throws {
        let scratch = try TestDirectory("parent-file")
        try "x".write(toFile: scratch.file("file"), atomically: true, encoding: .utf8)
        let out = scratch.file("file") + "/merged"
        let error = #expect(throws: MergeError.self) { try OutputAssembler.checkDestination(out, overwrite: false) }
        #expect(error?.description == "\(out): \(scratch.file("file")) is not a directory")
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8"]))
        #expect(throws: MergeError.self) { try LocalMerge.run(plan: plan, outputDirectory: out) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["file"])
    }

    @Test func nonEmptyOutputDirectoryIsRefusedWithoutForce() throws {
        let scratch = try TestDirectory("existing")
        let out = scratch.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try "keep me".write(toFile: out + "/note.txt", atomically: true, encoding: .utf8)
        let plan = try Planner.plan(job: .fixtureJob(.cat, adapters: ["a_r8"]))
        #expect(throws: MergeError.self) { try LocalMerge.run(plan: plan, outputDirectory: out) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["note.txt"])
        try LocalMerge.run(plan: plan, outputDirectory: out, overwrite: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted()
                == ["adapter_config.json", "adapter_model.safetensors", "merge-report.json"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["out"])
    }
}
