import BrickyardTestSupport
import Foundation
import Testing
@testable import AdapterIO

/// The writer: layout as the reference implementation writes it, round trips, atomicity, streaming order.
@Suite struct SafetensorsWriterTests {
    static func sample(_ count: Int, seed: Float) -> [Float] {
        (0..<count).map { Float(sin(Double($0) * 0.37 + Double(seed))) }
    }

    @Test(arguments: [DType.f32, .f16, .bf16])
    func roundTripsThroughTheReader(_ dtype: DType) throws {
        let scratch = try TestDirectory("writer")
        let path = scratch.file("out.safetensors")
        let a = Self.sample(12, seed: 1)
        let b = Self.sample(6, seed: 2)
        try SafetensorsWriter.write(path: path, tensors: [
            (TensorDeclaration(name: "z.weight", dtype: dtype, shape: [3, 4]), a),
            (TensorDeclaration(name: "a.weight", dtype: dtype, shape: [6]), b),
        ], metadata: ["format": "pt", "note": "quote \" and \\ and é"])
        let file = try SafetensorsFile(path: path)
        #expect(file.tensors.map(\.name) == ["a.weight", "z.weight"])
        #expect(file.metadata == ["format": "pt", "note": "quote \" and \\ and é"])
        #expect(try file.info("z.weight").shape == [3, 4])
        #expect(try file.info("a.weight").dataRange.lowerBound == 0)
        #expect(try file.info("z.weight").dataRange.lowerBound == 6 * dtype.byteSize)
        let tolerance: Float = dtype == .f32 ? 0 : (dtype == .f16 ? 1e-3 : 1e-2)
        for (name, values) in [("z.weight", a), ("a.weight", b)] {
            let back = try file.floats(name)
            for (x, y) in zip(values, back) { #expect(abs(x - y) <= tolerance * max(1, abs(x))) }
        }
        #expect(file.header.dataOffset % 8 == 0)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["out.safetensors"])
    }

    @Test func headerIsCompactSortedAndSpacePadded() throws {
        let scratch = try TestDirectory("writer")
        let path = scratch.file("h.safetensors")
        try SafetensorsWriter.write(path: path, tensors: [
            (TensorDeclaration(name: "b", dtype: .f32, shape: [1]), [1]),
            (TensorDeclaration(name: "a", dtype: .f32, shape: [1]), [2]),
        ], metadata: ["format": "pt"])
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        let length = Int(bytes[0..<8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        #expect(length % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        let expected = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(header.trimmingCharacters(in: .whitespaces) == expected)
        #expect(header.count - expected.count < 8)
    }

    @Test func streamingAcceptsAnyOrderAndRefusesToFinishIncomplete() throws {
        let scratch = try TestDirectory("writer")
        let path = scratch.file("s.safetensors")
        let writer = try SafetensorsWriter(path: path, tensors: [
            TensorDeclaration(name: "a", dtype: .bf16, shape: [2]),
            TensorDeclaration(name: "b", dtype: .bf16, shape: [3]),
        ])
        try writer.write("b", [1, 2, 3])
        #expect(throws: AdapterIOError.self) { try writer.write("b", [1, 2, 3]) }
        #expect(throws: AdapterIOError.self) { try writer.write("a", [1]) }
        #expect(throws: AdapterIOError.self) { try writer.finish() }
        #expect(!FileManager.default.fileExists(atPath: path))
        try writer.write("a", [4, 5])
        try writer.finish()
        let file = try SafetensorsFile(path: path)
        #expect(try file.floats("a") == [4, 5])
        #expect(try file.floats("b") == [1, 2, 3])
    }

    @Test func droppedWriterLeavesNothing() throws {
        let scratch = try TestDirectory("writer")
        do {
            let writer = try SafetensorsWriter(path: scratch.file("x.safetensors"), tensors: [TensorDeclaration(name: "a", dtype: .f32, shape: [1])])
            try writer.write("a", [1])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }
}

/// Tensors handed over as little-endian Float32 bytes at any alignment (a slice of a mapped checkpoint record).
@Suite struct SafetensorsFloat32BytesTests {
    @Test("Float32 bytes at an odd offset write the same file as the Float values", arguments: [DType.f32, .f16, .bf16])
    func bytesEqualValues(_ dtype: DType) throws {
        let scratch = try TestDirectory("writer-bytes")
        let values = SafetensorsWriterTests.sample(300_001, seed: 3)
        let declaration = TensorDeclaration(name: "w", dtype: dtype, shape: [values.count])
        try SafetensorsWriter.write(path: scratch.file("values.safetensors"), tensors: [(declaration, values)])
        var raw = [UInt8](repeating: 0xAB, count: 3)
        values.withUnsafeBytes { raw.append(contentsOf: $0) }
        let writer = try SafetensorsWriter(path: scratch.file("bytes.safetensors"), tensors: [declaration])
        try raw.withUnsafeBytes { try writer.write("w", float32Bytes: UnsafeRawBufferPointer(rebasing: $0[3...])) }
        try writer.finish()
        #expect(FileManager.default.contents(atPath: scratch.file("values.safetensors"))
                == FileManager.default.contents(atPath: scratch.file("bytes.safetensors")))
    }

    @Test("a byte count that does not match the shape is refused")
    func wrongByteCountIsRefused() throws {
        let scratch = try TestDirectory("writer-bytes")
        let writer = try SafetensorsWriter(path: scratch.file("x.safetensors"),
                                           tensors: [TensorDeclaration(name: "w", dtype: .f32, shape: [4])])
        let raw = [UInt8](repeating: 0, count: 15)
        #expect(throws: AdapterIOError.self) { try raw.withUnsafeBytes { try writer.write("w", float32Bytes: $0) } }
    }
}
