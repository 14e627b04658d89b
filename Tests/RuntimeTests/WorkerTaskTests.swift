import AdapterIO
import Foundation
import MergeEngine
import Testing
@testable import WireProtocol

/// A module stored in one or two safetensors files, optionally with transposed (Conv1D-style) factors.
private struct StoredModule {
    static let name = "transformer.h.0.attn.c_attn"
    let directory: String
    let plan: ModulePlan

    /// `adapters` sources; source i lives in file `i % files`; `transposed` stores A as [in, r] and B as [r, out].
    init(adapters: Int, files: Int, transposed: Bool = false, out: Int = 6, in inFeatures: Int = 5, rank: Int = 2) throws {
        directory = NSTemporaryDirectory() + "brickyard-task-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var tensors: [[(declaration: TensorDeclaration, values: [Float])]] = Array(repeating: [], count: files)
        for index in 0..<adapters {
            let a = (0..<(rank * inFeatures)).map { Float($0 + 10 * index) / 7 }
            let b = (0..<(out * rank)).map { Float($0 - 5 * index) / 3 }
            tensors[index % files] += [
                (TensorDeclaration(name: "a\(index)", dtype: .f16, shape: transposed ? [inFeatures, rank] : [rank, inFeatures]),
                 transposed ? Self.transpose(a, rows: rank, cols: inFeatures) : a),
                (TensorDeclaration(name: "b\(index)", dtype: .f32, shape: transposed ? [rank, out] : [out, rank]),
                 transposed ? Self.transpose(b, rows: out, cols: rank) : b),
            ]
        }
        var handles: [SafetensorsFile] = []
        for (file, entries) in tensors.enumerated() {
            try SafetensorsWriter.write(path: "\(directory)/f\(file).safetensors", tensors: entries)
            handles.append(try SafetensorsFile(path: "\(directory)/f\(file).safetensors"))
        }
        let sources = try (0..<adapters).map { index in
            let file = handles[index % files]
            let info = LoraModuleInfo(name: Self.name, rank: rank, alpha: Double(rank), scaling: 1, inFeatures: inFeatures,
                                      outFeatures: out, a: try file.reference("a\(index)"), b: try file.reference("b\(index)"),
                                      fanInFanOut: transposed)
            return ModuleSource(adapterIndex: index, module: info, coefficient: Double(index + 1) / 4)
        }
        plan = ModulePlan(name: Self.name, outFeatures: out, inFeatures: inFeatures, sources: sources, seed: 99)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    static func transpose(_ values: [Float], rows: Int, cols: Int) -> [Float] {
        (0..<(rows * cols)).map { index in values[(index % rows) * cols + index / rows] }
    }

    func storedBytes() throws -> [(a: [UInt8], b: [UInt8])] {
        try plan.sources.map { source in
            (try Self.bytes(source.module.a), try Self.bytes(source.module.b))
        }
    }

    private static func bytes(_ ref: TensorRef) throws -> [UInt8] {
        let data = try Data(contentsOf: URL(fileURLWithPath: ref.path))
        return Array(data[ref.byteOffset..<(ref.byteOffset + ref.byteCount)])
    }
}

/// Ways to corrupt a valid task, each of which a worker must refuse.
enum TaskCorruption: String, CaseIterable, Sendable {
    case unknownMethod, methodDisagrees, rankDisagrees, optionsNotJSON, zeroFeatures, noInputs, zeroRank
    case pathIndexOutOfRange, aLengthWrong, bLengthWrong, offsetOverflow, nonFiniteCoefficient, blockKind, tooLarge

    func apply(_ task: inout Wire.Task, limits: inout TaskLimits) {
        switch self {
        case .unknownMethod: task.method = "magic"
        case .methodDisagrees: task.method = "svd"
        case .rankDisagrees: task.rank += 1
        case .optionsNotJSON: task.optionsJSON = "{"
        case .zeroFeatures: task.inFeatures = 0
        case .noInputs: task.inputs = []
        case .zeroRank: task.inputs[0].rank = 0
        case .pathIndexOutOfRange: task.inputs[0].pathIndex = UInt32(task.paths.count)
        case .aLengthWrong: task.inputs[0].aLength -= 1
        case .bLengthWrong: task.inputs[1].bLength *= 2
        case .offsetOverflow: task.inputs[0].aOffset = .max - 1
        case .nonFiniteCoefficient: task.inputs[0].coefficient = .nan
        case .blockKind: task.kind = .kmeansBlockStep
        case .tooLarge: limits.maxInputBytes = 10
        }
    }
}

@Suite("Task building and validation")
struct WorkerTaskTests {
    @Test("a task carries deduplicated paths, absolute byte ranges and the canonical spec")
    func buildsTask() throws {
        let module = try StoredModule(adapters: 3, files: 2)
        defer { module.remove() }
        var spec = MergeSpec(method: .lego, rank: 4)
        spec.lego.iterations = 7
        let task = try Wire.Task(module: module.plan, spec: spec, jobID: "j", taskID: 5, attempt: 1, inputMode: .shared)
        #expect(task.paths == [module.directory + "/f0.safetensors", module.directory + "/f1.safetensors"])
        #expect(task.inputs.map(\.pathIndex) == [0, 1, 0])
        for (input, source) in zip(task.inputs, module.plan.sources) {
            #expect(input.aOffset == UInt64(source.module.a.byteOffset) && input.aLength == UInt64(source.module.a.byteCount))
            #expect(input.bOffset == UInt64(source.module.b.byteOffset) && input.bLength == UInt64(source.module.b.byteCount))
            #expect(input.coefficient == source.coefficient && !input.fanInFanOut)
        }
        #expect(task.method == "lego" && task.rank == 4 && task.seed == 99)
        #expect(try SpecJSON.decode(task.optionsJSON) == spec)
        // Canonical: keys sorted at every level.
        #expect(task.optionsJSON.hasPrefix(#"{"lego":{"balance":0.5,"balanceRounds":4,"basis":"#))
        #expect(!task.optionsJSON.contains(#""scale""#))  // scale 1 is not written: fingerprints of old jobs hold
        #expect(try SpecJSON.encode(spec) == task.optionsJSON)
    }

    @Test("shared and inline loading give the engine the same input as the plan, transposed storage included",
          arguments: [false, true])
    func loadsInput(transposed: Bool) throws {
        let module = try StoredModule(adapters: 2, files: 1, transposed: transposed)
        defer { module.remove() }
        let task = try Wire.Task(module: module.plan, spec: MergeSpec(method: .cat, rank: 0), jobID: "j", taskID: 1,
                                 attempt: 1, inputMode: .shared)
        #expect(task.inputs.allSatisfy { $0.fanInFanOut == transposed })
        let validated = try ValidatedTask(task)
        let reference = try module.plan.loadInput()
        let shared = try validated.modulePlan().loadInput()
        let inline = try validated.moduleInput(factors: try module.storedBytes(), source: "test")
        for loaded in [shared, inline] {
            #expect(loaded.terms.map(\.a) == reference.terms.map(\.a))
            #expect(loaded.terms.map(\.b) == reference.terms.map(\.b))
            #expect(loaded.terms.map(\.coefficient) == reference.terms.map(\.coefficient))
        }
        if transposed {
            // Independent check of the layout: A' row 0 is the first column of the stored [in, r] matrix.
            let stored = try SafetensorsFile(path: module.plan.sources[0].module.a.path).floats("a0")
            #expect(Array(shared.terms[0].a.prefix(5)) == (0..<5).map { stored[$0 * 2] })
        }
    }

    @Test("factors split over two files cannot be expressed in a task")
    func splitFactors() throws {
        let module = try StoredModule(adapters: 2, files: 2)
        defer { module.remove() }
        var plan = module.plan
        plan.sources[0].module.b = plan.sources[1].module.b
        #expect(throws: WireError.self) {
            try Wire.Task(module: plan, spec: MergeSpec(method: .cat, rank: 0), jobID: "j", taskID: 1, attempt: 1, inputMode: .shared)
        }
    }

    @Test("every inconsistency in a task from the wire is refused with a named error", arguments: TaskCorruption.allCases)
    func refuses(corruption: TaskCorruption) throws {
        let module = try StoredModule(adapters: 2, files: 1)
        defer { module.remove() }
        var task = try Wire.Task(module: module.plan, spec: MergeSpec(method: .linear, rank: 2), jobID: "j", taskID: 8,
                                 attempt: 1, inputMode: .shared)
        var limits = TaskLimits()
        _ = try ValidatedTask(task, limits: limits)
        corruption.apply(&task, limits: &limits)
        do {
            _ = try ValidatedTask(task, limits: limits)
            Issue.record("accepted a task with \(corruption)")
        } catch let error as WireError {
            #expect(error.description.contains("task 8"))
        }
    }

    @Test("inline bytes of the wrong length are refused")
    func inlineLength() throws {
        let module = try StoredModule(adapters: 2, files: 1)
        defer { module.remove() }
        let validated = try ValidatedTask(try Wire.Task(module: module.plan, spec: MergeSpec(method: .cat, rank: 0),
                                                        jobID: "j", taskID: 1, attempt: 1, inputMode: .inline))
        var factors = try module.storedBytes()
        factors[1].b.removeLast()
        #expect(throws: (any Error).self) { try validated.moduleInput(factors: factors, source: "test") }
        #expect(throws: (any Error).self) { try validated.moduleInput(factors: Array(factors.prefix(1)), source: "test") }
    }
}
