import Foundation
@testable import AdapterIO

/// Shared test helpers: fixture locations and per-test scratch directories.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/peft-tiny")
    static let adapterNames = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]

    static func adapter(_ name: String) -> String { root.appendingPathComponent("adapters/\(name)").path }
    static func expectedDelta(_ name: String) -> String { root.appendingPathComponent("expected/delta_\(name).safetensors").path }
}

/// A unique directory under the system temp dir, removed when the value is dropped.
final class ScratchDirectory {
    let path: String

    init(_ label: String = "test") throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("brickyard-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes raw bytes (for building malformed files).
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> String {
        try write(name, Array(text.utf8))
    }
}

/// Builds safetensors bytes by hand, so tests can make exactly the malformed files they need.
enum RawSafetensors {
    static func file(header: String, data: [UInt8]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes = Array($0) }
        return bytes + Array(header.utf8) + data
    }

    static func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }
}

/// Independent reference for ΔW = scaling · B · A in Double (triple loop).
func denseDelta(a: [Float], b: [Float], rank: Int, inFeatures: Int, outFeatures: Int, scaling: Double) -> [Double] {
    var delta = [Double](repeating: 0, count: outFeatures * inFeatures)
    for row in 0..<outFeatures {
        for col in 0..<inFeatures {
            var sum = 0.0
            for k in 0..<rank { sum += Double(b[row * rank + k]) * Double(a[k * inFeatures + col]) }
            delta[row * inFeatures + col] = scaling * sum
        }
    }
    return delta
}
