import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// Every malformed input is refused with a one-line error naming the file (and tensor/key), never a crash.
@Suite struct BadInputTests {
    /// Asserts `body` throws an `AdapterIOError` of `code` whose one-line description names `path` and contains `text`.
    @discardableResult
    static func expectRefusal(_ code: AdapterIOError.Code, path: String, mentioning text: String,
                              sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> AdapterIOError? {
        do {
            try body()
            Issue.record("expected \(code) error mentioning '\(text)', nothing was thrown", sourceLocation: sourceLocation)
            return nil
        } catch let error as AdapterIOError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix(path), "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    static let validHeader = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    // MARK: safetensors structure

    @Test func truncatedFileMissingData() throws {
        let scratch = try TestDirectory("bad")
        let original = try Data(contentsOf: URL(fileURLWithPath: PeftTinyFixtures.adapter("a_r8") + "/adapter_model.safetensors"))
        let path = try scratch.write("cut.safetensors", Array(original.prefix(original.count / 2)))
        Self.expectRefusal(.badTensorLayout, path: path, mentioning: "outside") { _ = try SafetensorsFile(path: path) }
    }

    @Test func fileShorterThanTheLengthPrefix() throws {
        let scratch = try TestDirectory("bad")
        let path = try scratch.write("tiny.safetensors", [1, 2, 3])
        Self.expectRefusal(.truncated, path: path, mentioning: "truncated") { _ = try SafetensorsFile(path: path) }
    }

    @Test func emptyFile() throws {
        let scratch = try TestDirectory("bad")
        let path = try scratch.write("empty.safetensors", [])
        Self.expectRefusal(.truncated, path: path, mentioning: "truncated") { _ = try SafetensorsFile(path: path) }
    }

    @Test func headerLengthLargerThanTheFile() throws {
        let scratch = try TestDirectory("bad")
        var bytes = RawSafetensors.file(header: Self.validHeader, data: RawSafetensors.f32Bytes([1, 2]))
        bytes.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        let path = try scratch.write("long.safetensors", bytes)
        Self.expectRefusal(.truncated, path: path, mentioning: "header length") { _ = try SafetensorsFile(path: path) }
    }

    @Test func headerNotJSON() throws {
        let scratch = try TestDirectory("bad")
        let path = try scratch.write("text.safetensors", RawSafetensors.file(header: "this is not json", data: []))
        Self.expectRefusal(.badHeader, path: path, mentioning: "not valid JSON") { _ = try SafetensorsFile(path: path) }
    }

    @Test func headerNotUTF8() throws {
        let scratch = try TestDirectory("bad")
        var bytes = RawSafetensors.file(header: "{\"\u{e9}\":1}", data: [])
        bytes[10] = 0xff
        let path = try scratch.write("latin.safetensors", bytes)
        Self.expectRefusal(.badHeader, path: path, mentioning: "UTF-8") { _ = try SafetensorsFile(path: path) }
    }

    @Test func headerNotAnObject() throws {
        let scratch = try TestDirectory("bad")
        let path = try scratch.write("array.safetensors", RawSafetensors.file(header: "[1, 2]", data: []))
        Self.expectRefusal(.badHeader, path: path, mentioning: "not a JSON object") { _ = try SafetensorsFile(path: path) }
    }

    @Test func tensorRangeOutsideTheData() throws {
        let scratch = try TestDirectory("bad")
        let header = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        let path = try scratch.write("short.safetensors", RawSafetensors.file(header: header, data: RawSafetensors.f32Bytes([1, 2])))
        Self.expectRefusal(.badTensorLayout, path: path, mentioning: "tensor a: byte range [0, 16) lies outside the 8-byte data section") {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test func overlappingRanges() throws {
        let scratch = try TestDirectory("bad")
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let path = try scratch.write("overlap.safetensors", RawSafetensors.file(header: header, data: RawSafetensors.f32Bytes([1, 2, 3])))
        Self.expectRefusal(.badTensorLayout, path: path, mentioning: "tensors a and b have overlapping byte ranges") {
            _ = try SafetensorsFile(path: path)
        }
    }

    @Test func unknownDType() throws {
        let scratch = try TestDirectory("bad")
        let header = #"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#
        let path = try scratch.write("fp8.safetensors", RawSafetensors.file(header: header, data: [0, 0]))
        Self.expectRefusal(.unknownDType, path: path, mentioning: "tensor a: unsupported dtype F8_E4M3") { _ = try SafetensorsFile(path: path) }
    }

    @Test func shapeDisagreesWithByteRange() throws {
        let scratch = try TestDirectory("bad")
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        let path = try scratch.write("shape.safetensors", RawSafetensors.file(header: header, data: RawSafetensors.f32Bytes([1, 2])))
        Self.expectRefusal(.badTensorLayout, path: path, mentioning: "tensor a: shape [3]") { _ = try SafetensorsFile(path: path) }
    }

    @Test func nonIntegerShape() throws {
        let scratch = try TestDirectory("bad")
        let header = #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#
        let path = try scratch.write("frac.safetensors", RawSafetensors.file(header: header, data: RawSafetensors.f32Bytes([1, 2])))
        Self.expectRefusal(.badHeader, path: path, mentioning: "tensor a: shape") { _ = try SafetensorsFile(path: path) }
    }

    @Test func metadataKeptAndValidated() throws {
        let scratch = try TestDirectory("bad")
        let good = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let goodPath = try scratch.write("good.safetensors", RawSafetensors.file(header: good, data: RawSafetensors.f32Bytes([1, 2])))
        #expect(try SafetensorsFile(path: goodPath).metadata == ["format": "pt"])
        let bad = #"{"__metadata__":{"format":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let path = try scratch.write("meta.safetensors", RawSafetensors.file(header: bad, data: RawSafetensors.f32Bytes([1, 2])))
        Self.expectRefusal(.badHeader, path: path, mentioning: "__metadata__.format") { _ = try SafetensorsFile(path: path) }
    }

    // MARK: Non-finite values

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteValueNamesTheTensorUnlessAllowed(_ bad: Float) throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2)) { a, _ in a[1] = bad }
        let adapter = try PeftAdapter.load(path: directory)
        let module = try #require(adapter.modules.first)
        Self.expectRefusal(.nonFinite, path: adapter.weightsPath, mentioning: "tensor \(module.name).lora_A.weight: element 1") {
            _ = try adapter.loadFactors(module)
        }
        Self.expectRefusal(.nonFinite, path: adapter.weightsPath, mentioning: "tensor \(module.name).lora_A.weight") {
            _ = try TensorReader.readFloats(module.a)
        }
        let lenient = try PeftAdapter.load(path: directory, allowNonFinite: true)
        let (a, _) = try lenient.loadFactors(module)
        #expect(!a[1].isFinite)
        #expect(try !TensorReader.readFloats(module.a, allowNonFinite: true)[1].isFinite)
    }

    // MARK: PEFT adapters

    @Test func aAndBRanksDisagree() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2), rankA: 2, rankB: 3)
        Self.expectRefusal(.rankMismatch, path: directory + "/adapter_model.safetensors", mentioning: "lora_A [2, 4] has rank 2 but lora_B [3, 3] has rank 3") {
            _ = try PeftAdapter.load(path: directory)
        }
    }

    @Test func rankDisagreesWithTheConfig() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 4, alpha: 8), rankA: 2, rankB: 2)
        Self.expectRefusal(.rankMismatch, path: directory + "/adapter_model.safetensors", mentioning: "factors have rank 2 but adapter_config.json gives r=4") {
            _ = try PeftAdapter.load(path: directory)
        }
    }

    @Test func bareFileRankDisagreesWithTheGivenRank() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2))
        let file = directory + "/adapter_model.safetensors"
        Self.expectRefusal(.rankMismatch, path: file, mentioning: "the given rank is 5") { _ = try PeftAdapter.load(path: file, rank: 5) }
        let bare = try PeftAdapter.load(path: file, alpha: 6)
        #expect(bare.modules.allSatisfy { $0.rank == 2 && $0.scaling == 3 })
    }

    @Test func missingAdapterConfig() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2))
        try FileManager.default.removeItem(atPath: directory + "/adapter_config.json")
        Self.expectRefusal(.missingConfig, path: directory, mentioning: "no adapter_config.json") { _ = try PeftAdapter.load(path: directory) }
    }

    @Test func doraConfigIsRefused() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2, extra: #""use_dora": true"#))
        Self.expectRefusal(.unsupported, path: directory + "/adapter_config.json", mentioning: "DoRA") { _ = try PeftAdapter.load(path: directory) }
    }

    @Test(arguments: [
        (#""lora_bias": true"#, "lora_bias"),
        (#""peft_type": "IA3""#, "peft_type is IA3"),
        (#""r": 0"#, "r is missing or not a positive integer"),
        (#""lora_alpha": "big""#, "lora_alpha"),
        (#""rank_pattern": {"q_proj": "four"}"#, "rank_pattern.q_proj"),
    ])
    func otherConfigProblems(_ extra: String, _ message: String) throws {
        let scratch = try TestDirectory("bad")
        let config = Adapters.config(r: 2, alpha: 2, extra: extra)
        let directory = try Adapters.make(in: scratch, config: config)
        let code: AdapterIOError.Code = message.contains("lora_bias") || message.contains("peft_type") ? .unsupported : .badConfig
        Self.expectRefusal(code, path: directory + "/adapter_config.json", mentioning: message) { _ = try PeftAdapter.load(path: directory) }
    }

    @Test(arguments: [
        "base_model.model.lm_head.modules_to_save.default.weight",
        "base_model.model.layers.0.q_proj.lora_magnitude_vector",
        "base_model.model.embed_tokens.lora_embedding_A",
        "base_model.model.layers.0.q_proj.lora_A.bias",
    ])
    func nonLoraTensorsAreRefused(_ key: String) throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2), extraTensor: key)
        Self.expectRefusal(.unsupported, path: directory + "/adapter_model.safetensors", mentioning: "tensor \(key) is not a LoRA factor") {
            _ = try PeftAdapter.load(path: directory)
        }
    }

    @Test func pickleWeightsAskForConversion() throws {
        let scratch = try TestDirectory("bad")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 2))
        try FileManager.default.moveItem(atPath: directory + "/adapter_model.safetensors", toPath: directory + "/adapter_model.bin")
        Self.expectRefusal(.unsupported, path: directory, mentioning: "convert it to adapter_model.safetensors") { _ = try PeftAdapter.load(path: directory) }
        let bin = directory + "/adapter_model.bin"
        Self.expectRefusal(.unsupported, path: bin, mentioning: "convert it to .safetensors") { _ = try PeftAdapter.load(path: bin) }
    }

    @Test func adapterNameInKeysIsStripped() throws {
        let scratch = try TestDirectory("names")
        let directory = try Adapters.make(in: scratch, config: Adapters.config(r: 2, alpha: 4), keySuffix: ".default.weight")
        let adapter = try PeftAdapter.load(path: directory)
        #expect(adapter.modules.map(\.name) == [Adapters.moduleName])
        #expect(adapter.modules[0].scaling == 2)
    }

    @Test func missingPartnerFactor() throws {
        let scratch = try TestDirectory("bad")
        let directory = scratch.file("adapter")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try scratch.write("adapter/adapter_config.json", text: Adapters.config(r: 2, alpha: 2))
        try SafetensorsWriter.write(path: directory + "/adapter_model.safetensors", tensors: [
            (TensorDeclaration(name: Adapters.moduleName + ".lora_A.weight", dtype: .f32, shape: [2, 4]), [Float](repeating: 0, count: 8)),
        ])
        Self.expectRefusal(.shapeMismatch, path: directory + "/adapter_model.safetensors", mentioning: "has lora_A but no lora_B") {
            _ = try PeftAdapter.load(path: directory)
        }
    }
}

/// Small hand-made adapters for the bad-input tests: one module, in 4 → out 3.
enum Adapters {
    static let moduleName = "base_model.model.model.layers.0.self_attn.q_proj"

    static func config(r: Int, alpha: Double, extra: String? = nil) -> String {
        var fields = [#""peft_type": "LORA""#, #""r": \#(r)"#, #""lora_alpha": \#(alpha)"#, #""target_modules": ["q_proj"]"#]
        if let extra {
            let key = extra.split(separator: ":")[0]
            fields.removeAll { $0.hasPrefix(key + ":") }
            fields.append(extra)
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// Writes `adapter/` with a config and one module; `mutate` may edit A and B before writing.
    static func make(in scratch: TestDirectory, config: String, rankA: Int = 2, rankB: Int? = nil,
                     keySuffix: String = ".weight", extraTensor: String? = nil,
                     mutate: (inout [Float], inout [Float]) -> Void = { _, _ in }) throws -> String {
        let directory = scratch.file("adapter")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try scratch.write("adapter/adapter_config.json", text: config)
        let rankB = rankB ?? rankA
        var a = (0..<(rankA * 4)).map { Float($0) * 0.1 }
        var b = (0..<(3 * rankB)).map { Float($0) * -0.2 }
        mutate(&a, &b)
        var tensors: [(declaration: TensorDeclaration, values: [Float])] = [
            (TensorDeclaration(name: moduleName + ".lora_A" + keySuffix, dtype: .f32, shape: [rankA, 4]), a),
            (TensorDeclaration(name: moduleName + ".lora_B" + keySuffix, dtype: .f32, shape: [3, rankB]), b),
        ]
        if let extraTensor { tensors.append((TensorDeclaration(name: extraTensor, dtype: .f32, shape: [1]), [1])) }
        try SafetensorsWriter.write(path: directory + "/adapter_model.safetensors", tensors: tensors)
        return directory
    }
}
