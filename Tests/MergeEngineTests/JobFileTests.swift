import Foundation
import Testing
@testable import MergeEngine
import AdapterIO

/// Job YAML: defaults, path resolution, globs, and one test per kind of bad input.
@Suite struct JobFileTests {
    /// A temp folder with a small adapter pool: pool/a, pool/b (directories), pool/c.safetensors, pool/notes.txt.
    final class Workspace {
        let root: String

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("brickyard-job-\(UUID().uuidString)").path
            let manager = FileManager.default
            for name in ["pool/b", "pool/a", "pool/empty-dir"] {
                try manager.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            }
            for name in ["pool/a/adapter_config.json", "pool/b/adapter_config.json", "pool/c.safetensors", "pool/notes.txt"] {
                _ = manager.createFile(atPath: root + "/" + name, contents: Data("{}".utf8))
            }
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }

        func parse(_ yaml: String) throws -> JobSpec {
            try JobSpec.parse(yaml: yaml, baseDirectory: root, fileName: "job.yaml")
        }

        func load(_ yaml: String) throws -> JobSpec {
            let path = root + "/job.yaml"
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            return try JobSpec.load(path: path)
        }
    }

    @Test func fullJobParsesWithResolvedPaths() throws {
        let workspace = try Workspace()
        let job = try workspace.load("""
        method: lego
        rank: 16
        normalize: false
        seed: 18446744073709551615
        parameters: {iterations: 50, tolerance: 0.001, reweight: dual, verbose: true}
        output: {dtype: bfloat16}
        adapters:
          - {path: pool/b, weight: 2}
          - path: pool/c.safetensors
            rank: 8
            alpha: 16
          - {glob: "pool/*", weight: 0.5}
        """)
        #expect(job.method == .lego)
        #expect(job.rank == 16)
        #expect(job.normalize == false)
        #expect(job.seed == UInt64.max)
        #expect(job.outputDType == .bf16)
        #expect(job.parameters == ["iterations": .int(50), "tolerance": .double(0.001), "reweight": .string("dual"), "verbose": .bool(true)])
        #expect(job.sourcePath == workspace.root + "/job.yaml")
        let root = workspace.root
        #expect(job.adapters == [
            AdapterEntry(path: root + "/pool/b", weight: 2),
            AdapterEntry(path: root + "/pool/c.safetensors", weight: 1, rank: 8, alpha: 16),
            AdapterEntry(path: root + "/pool/a", weight: 0.5),
            AdapterEntry(path: root + "/pool/b", weight: 0.5),
            AdapterEntry(path: root + "/pool/c.safetensors", weight: 0.5),
        ])
    }

    @Test func defaultsApply() throws {
        let job = try Workspace().parse("method: cat\nadapters: [{path: pool/a}]")
        #expect(job.rank == nil)
        #expect(job.normalize)
        #expect(job.seed == 0)
        #expect(job.outputDType == .f32)
        #expect(job.parameters.isEmpty)
        #expect(job.adapters.map(\.weight) == [1])
    }

    struct BadCase: Sendable, CustomStringConvertible {
        var yaml: String
        var message: String
        var description: String { message }
    }

    static let badCases: [BadCase] = [
        BadCase(yaml: "method: blend\nadapters: [{path: pool/a}]", message: "job.yaml: method: unknown method 'blend'"),
        BadCase(yaml: "adapters: [{path: pool/a}]", message: "job.yaml: method: is required"),
        BadCase(yaml: "method: cat\nadapters: []", message: "job.yaml: adapters: is empty"),
        BadCase(yaml: "method: cat", message: "job.yaml: adapters: is required"),
        BadCase(yaml: "method: cat\nadapters: [{glob: \"nowhere/*\"}]", message: "job.yaml: adapters[0].glob: 'nowhere/*' matches no adapter"),
        BadCase(yaml: "method: cat\nadapters: [{glob: \"pool/empty-*\"}]", message: "job.yaml: adapters[0].glob: 'pool/empty-*' matches no adapter"),
        BadCase(yaml: "method: cat\nadapters: [{path: pool/a}, {path: pool/a}, {path: /x/y}]", message: "job.yaml: adapters[2].path: /x/y does not exist"),
        BadCase(yaml: "method: cat\nranks: 4\nadapters: [{path: pool/a}]", message: "job.yaml: ranks: unknown key"),
        BadCase(yaml: "method: cat\nadapters: [{path: pool/a, wieght: 2}]", message: "job.yaml: adapters[0].wieght: unknown key"),
        BadCase(yaml: "method: cat\noutput: {dtype: float32, format: pt}\nadapters: [{path: pool/a}]", message: "job.yaml: output.format: unknown key"),
        BadCase(yaml: "method: cat\nrank: sixteen\nadapters: [{path: pool/a}]", message: "job.yaml: rank: must be an integer"),
        BadCase(yaml: "method: cat\nrank: 0\nadapters: [{path: pool/a}]", message: "job.yaml: rank: must be at least 1"),
        BadCase(yaml: "method: cat\nnormalize: 1\nadapters: [{path: pool/a}]", message: "job.yaml: normalize: must be true or false"),
        BadCase(yaml: "method: cat\nseed: -3\nadapters: [{path: pool/a}]", message: "job.yaml: seed: must be a non-negative integer"),
        BadCase(yaml: "method: cat\noutput: {dtype: int8}\nadapters: [{path: pool/a}]", message: "job.yaml: output.dtype: unknown dtype 'int8'"),
        BadCase(yaml: "method: cat\nadapters: [{path: pool/a, weight: heavy}]", message: "job.yaml: adapters[0].weight: must be a number"),
        BadCase(yaml: "method: cat\nadapters: [{weight: 2}]", message: "job.yaml: adapters[0]: needs either path or glob"),
        BadCase(yaml: "method: cat\nadapters: [{path: pool/a, glob: \"pool/*\"}]", message: "job.yaml: adapters[0]: has both path and glob"),
        BadCase(yaml: "method: cat\nadapters: {path: pool/a}", message: "job.yaml: adapters: must be a list"),
        BadCase(yaml: "method: cat\nparameters: {density: [1, 2]}\nadapters: [{path: pool/a}]", message: "job.yaml: parameters.density: must be a scalar"),
        BadCase(yaml: "method: 3\nadapters: [{path: pool/a}]", message: "job.yaml: method: must be a string"),
        BadCase(yaml: "method: cat\nmethod: lego\nadapters: [{path: pool/a}]", message: "job.yaml: method: given twice"),
        BadCase(yaml: "- just\n- a list", message: "job.yaml: (top level): must be a mapping"),
        BadCase(yaml: "method: [cat", message: "job.yaml: invalid YAML"),
        BadCase(yaml: "", message: "job.yaml: empty job file"),
    ]

    @Test(arguments: badCases)
    func badJobIsAOneLineErrorNamingFileAndKey(_ bad: BadCase) throws {
        let workspace = try Workspace()
        let error = try #require(throws: JobFileError.self) { try workspace.parse(bad.yaml) }
        #expect(error.description.hasPrefix(bad.message), "got: \(error.description)")
        #expect(!error.description.contains("\n"))
    }

    @Test func missingJobFileIsAnError() {
        #expect(throws: JobFileError.self) { try JobSpec.load(path: "/nonexistent/job.yaml") }
    }

    /// Every error of a loaded job names the file the same way (its standardized absolute path), whether the YAML
    /// reader, the option check or the reading itself finds it: before, the first named the path as given.
    @Test func loadedJobErrorsNameTheFileOneWay() throws {
        let workspace = try Workspace()
        let given = workspace.root + "/pool/../job.yaml"
        let standard = workspace.root + "/job.yaml"
        func message(_ yaml: String) throws -> String {
            try yaml.write(toFile: standard, atomically: true, encoding: .utf8)
            let error = #expect(throws: (any Error).self) {
                _ = try MergeSpec.resolve(job: try JobSpec.load(path: given), largestInputRank: 4)
            }
            return error.map { "\($0)" } ?? ""
        }
        #expect(try message("method: lego\ncolour: red\nadapters:\n  - path: pool/a\n").hasPrefix(standard + ": colour: "))
        #expect(try message("method: lego\nparameters:\n  colour: red\nadapters:\n  - path: pool/a\n")
            .hasPrefix(standard + ": parameters.colour: "))
        let missing = #expect(throws: JobFileError.self) { try JobSpec.load(path: workspace.root + "/pool/../none.yaml") }
        #expect(missing?.description.hasPrefix(workspace.root + "/none.yaml: ") == true)
    }
}
