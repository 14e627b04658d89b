import Testing
@testable import AdapterIO

/// The bit-level converters against the language's own Float16 conversion and a reference rounding.
@Suite struct FloatConversionTests {
    @Test func everyHalfDecodesLikeFloat16() {
        for bits in 0...UInt16.max {
            let mine = FloatConversion.halfToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                #expect(mine.isNaN)
            } else {
                #expect(mine.bitPattern == reference.bitPattern, "half 0x\(String(bits, radix: 16))")
            }
        }
    }

    @Test(arguments: [
        (Float(1.0), UInt16(0x3f80)),
        (Float(bitPattern: 0x3f80_8000), UInt16(0x3f80)), // exactly half-way, even: stays
        (Float(bitPattern: 0x3f81_8000), UInt16(0x3f82)), // exactly half-way, odd: rounds up
        (Float(bitPattern: 0x3f80_8001), UInt16(0x3f81)), // above half-way
        (Float.infinity, UInt16(0x7f80)),
        (-Float.infinity, UInt16(0xff80)),
        (Float.greatestFiniteMagnitude, UInt16(0x7f80)), // overflows to Inf under RNE
    ])
    func bfloat16RoundsToNearestEven(_ value: Float, _ expected: UInt16) {
        #expect(FloatConversion.floatToBFloat16(value) == expected)
    }

    @Test func bfloat16KeepsNaN() {
        let quiet = FloatConversion.floatToBFloat16(.nan)
        let signalling = FloatConversion.floatToBFloat16(Float(bitPattern: 0x7f80_0001))
        #expect(Float(bitPattern: UInt32(quiet) << 16).isNaN)
        #expect(Float(bitPattern: UInt32(signalling) << 16).isNaN)
    }

    @Test(arguments: [DType.f32, .f16, .bf16, .f64])
    func encodeThenDecodeIsExactOnRepresentableValues(_ dtype: DType) {
        // Small integers and powers of two are exact in every dtype.
        let values: [Float] = [0, -0.0, 1, -2, 0.5, 3, -1024, 0.125, 7]
        var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
        values.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { FloatConversion.encode(source, as: dtype, into: $0) }
        }
        let decoded = FloatConversion.decode(bytes: bytes, dtype: dtype)
        #expect(decoded.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func nonFiniteScanFindsTheFirstBadElement() {
        let values: [Float] = [1, 2, .infinity, .nan]
        #expect(values.withUnsafeBufferPointer { FloatConversion.firstNonFinite($0) } == 2)
        #expect([Float(1), 2].withUnsafeBufferPointer { FloatConversion.firstNonFinite($0) } == nil)
    }
}
