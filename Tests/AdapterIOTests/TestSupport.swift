import Foundation
@testable import AdapterIO

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
