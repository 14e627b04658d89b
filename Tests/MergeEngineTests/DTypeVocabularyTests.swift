import AdapterIO
import BrickyardTestSupport
import Foundation
import Testing

/// One dtype vocabulary (issue 10 item 6): every command and the job file accept float32/float16/bfloat16 and
/// their short forms f32/f16/bf16 alike, and Brickyard prints only the long (canonical) names.
@Suite struct DTypeVocabularyTests {
    @Test(arguments: [
        ("float32", DType.f32), ("f32", .f32), ("FP32", .f32), ("F32", .f32), ("torch.float32", .f32),
        ("float16", .f16), ("f16", .f16), ("half", .f16), ("bfloat16", .bf16), ("bf16", .bf16), ("BF16", .bf16),
        ("torch.bfloat16", .bf16), ("float64", .f64),
    ])
    func spellingsMapToOneDType(spelling: String, dtype: DType) {
        #expect(DType(spelling: spelling) == dtype)
    }

    @Test(arguments: ["int8", "", "bfloat", "float8", "f 32"])
    func unknownSpellingsAreRejected(spelling: String) {
        #expect(DType(spelling: spelling) == nil)
    }

    @Test func canonicalNamesRoundTrip() {
        for dtype in DType.allCases { #expect(DType(spelling: dtype.canonicalName) == dtype) }
        #expect(DType.allCases.map(\.canonicalName) == ["float32", "float16", "bfloat16", "float64"])
    }

    @Test func synthAndJobFilesTakeBothSpellingsAndPrintTheLongOne() throws {
        let scratch = try TestDirectory("dtype-words")
        var pools: [Data] = []
        for spelling in ["bf16", "bfloat16"] {
            let pool = scratch.file("pool-\(spelling)")
            let run = try BrickyardExecutable.run(["synth", "--out", pool, "--adapters", "2", "--rank", "4", "--dtype", spelling])
            #expect(run.status == 0, "\(run.stderr)")
            pools.append(try #require(FileManager.default.contents(atPath: pool + "/adapter-000/adapter_model.safetensors")))
        }
        #expect(pools[0] == pools[1])
        let inspect = try BrickyardExecutable.run(["inspect", scratch.file("pool-bf16/adapter-000")])
        #expect(inspect.stdout.contains("bfloat16") && !inspect.stdout.contains("BF16"), "\(inspect.stdout)")
        let bad = try BrickyardExecutable.run(["synth", "--out", scratch.file("bad"), "--adapters", "1", "--rank", "2", "--dtype", "int8"])
        #expect(bad.status != 0 && bad.stderr.contains("float32 (f32), float16 (f16) or bfloat16 (bf16)"), "\(bad.stderr)")

        var outputs: [Data] = []
        for spelling in ["f16", "float16"] {
            let job = scratch.file("job-\(spelling).yaml")
            try "method: cat\noutput: {dtype: \(spelling)}\nadapters:\n  - path: \(PeftTinyFixtures.adapter("a_r8"))\n"
                .write(toFile: job, atomically: true, encoding: .utf8)
            let out = scratch.file("out-\(spelling)")
            let run = try BrickyardExecutable.run(["merge", job, "--out", out, "--in-process"])
            #expect(run.status == 0, "\(run.stderr)")
            outputs.append(try #require(FileManager.default.contents(atPath: out + "/adapter_model.safetensors")))
            let report = try String(contentsOfFile: out + "/merge-report.json", encoding: .utf8)
            #expect(report.contains("\"float16\"") && !report.contains("\"F16\""))
        }
        #expect(outputs[0] == outputs[1])
    }
}
