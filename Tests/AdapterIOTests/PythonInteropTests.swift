import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// Files from our writer must load in Hugging Face's own `safetensors` package (skipped without Python).
@Suite struct PythonInteropTests {
    static let pythonAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import safetensors, numpy"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    @Test(.enabled(if: pythonAvailable), arguments: [DType.f32, .f16])
    func pythonSafetensorsReadsOurFiles(_ dtype: DType) throws {
        let scratch = try TestDirectory("interop")
        let path = scratch.file("x.safetensors")
        let values: [Float] = [1.5, -2.25, 0.125, 1024, -0.5, 3]
        try SafetensorsWriter.write(path: path, tensors: [
            (TensorDeclaration(name: "layer.lora_B.weight", dtype: dtype, shape: [2, 3]), values),
            (TensorDeclaration(name: "layer.lora_A.weight", dtype: dtype, shape: [3]), [7, 8, 9]),
        ], metadata: ["format": "pt"])
        let script = """
        import sys
        from safetensors.numpy import load_file
        from safetensors import safe_open
        t = load_file(sys.argv[1])
        b = t["layer.lora_B.weight"]; a = t["layer.lora_A.weight"]
        assert b.shape == (2, 3) and a.shape == (3,), (b.shape, a.shape)
        assert str(b.dtype) == sys.argv[2], b.dtype
        assert b.astype("float64").ravel().tolist() == [1.5, -2.25, 0.125, 1024, -0.5, 3], b
        assert a.astype("float64").tolist() == [7, 8, 9], a
        with safe_open(sys.argv[1], framework="numpy") as f:
            assert f.metadata() == {"format": "pt"}, f.metadata()
        print("ok")
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path, dtype == .f32 ? "float32" : "float16"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python said: \(text)")
    }
}
