/// Conversions between the stored element types and Float32. Loops work on raw bit patterns with no
/// branches the compiler cannot turn into selects, so they vectorise; nothing allocates per element.
public enum FloatConversion {
    /// Decodes `count` elements of `dtype` from `source` (unaligned, little-endian) into `destination`.
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Float>) {
        let count = min(destination.count, source.count / dtype.byteSize)
        guard count > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        switch dtype {
        case .f32:
            // memcpy handles any alignment; safetensors data is little-endian like every supported host.
            dst.withMemoryRebound(to: UInt8.self, capacity: count * 4) { $0.update(from: src.assumingMemoryBound(to: UInt8.self), count: count * 4) }
        case .bf16:
            for i in 0..<count {
                let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                dst[i] = Float(bitPattern: bits << 16)
            }
        case .f16:
            for i in 0..<count {
                dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .f64:
            for i in 0..<count {
                dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
            }
        }
    }

    /// Decodes raw bytes (for example a tensor sent inline over the wire) into a new array.
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
        let count = source.count / dtype.byteSize
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            decode(source, dtype: dtype, into: buffer)
            initialized = count
        }
    }

    /// Decodes raw bytes held in any contiguous byte collection.
    public static func decode(bytes: [UInt8], dtype: DType) -> [Float] {
        bytes.withUnsafeBytes { decode($0, dtype: dtype) }
    }

    /// Encodes Float32 values as `dtype` (little-endian) into `destination`, which must hold
    /// `source.count * dtype.byteSize` bytes. Narrowing rounds to nearest even; NaN stays NaN.
    public static func encode(_ source: UnsafeBufferPointer<Float>, as dtype: DType, into destination: UnsafeMutableRawBufferPointer) {
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let count = min(source.count, destination.count / dtype.byteSize)
        switch dtype {
        case .f32:
            dst.copyMemory(from: src, byteCount: count * 4)
        case .bf16:
            for i in 0..<count {
                dst.storeBytes(of: floatToBFloat16(src[i]), toByteOffset: 2 * i, as: UInt16.self)
            }
        case .f16:
            for i in 0..<count {
                dst.storeBytes(of: floatToHalf(src[i]), toByteOffset: 2 * i, as: UInt16.self)
            }
        case .f64:
            for i in 0..<count {
                dst.storeBytes(of: Double(src[i]), toByteOffset: 8 * i, as: Double.self)
            }
        }
    }

    /// IEEE binary16 → binary32, exact. The exponent/mantissa field is moved into float position and
    /// rescaled by 2^112, which also normalises subnormals; Inf/NaN get the all-ones exponent.
    @inline(__always)
    public static func halfToFloat(_ half: UInt16) -> Float {
        let h = UInt32(half)
        let sign = (h & 0x8000) << 16
        let magnitude = h & 0x7fff
        let finite = Float(bitPattern: magnitude << 13) * 0x1p112
        let special = Float(bitPattern: (magnitude << 13) | 0x7f80_0000)
        let value = magnitude >= 0x7c00 ? special : finite
        return Float(bitPattern: value.bitPattern | sign)
    }

    /// binary32 → bfloat16, rounding to nearest even; NaN is kept a (quiet) NaN with its sign.
    @inline(__always)
    public static func floatToBFloat16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
        let rounded = bits &+ 0x7fff &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// binary32 → binary16 with the language's conversion (round to nearest even, overflow to Inf, NaN kept).
    @inline(__always)
    public static func floatToHalf(_ value: Float) -> UInt16 {
        #if arch(x86_64) || arch(arm64)
        return Float16(value).bitPattern
        #else
        return SoftHalf.fromFloat(value)
        #endif
    }

    /// Index of the first element that is NaN or ±Inf, or nil. The scan ORs an integer flag so it vectorises.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        var flag: UInt32 = 0
        for value in values {
            flag |= (value.bitPattern & 0x7f80_0000) == 0x7f80_0000 ? 1 : 0
        }
        guard flag != 0 else { return nil }
        return values.firstIndex { !$0.isFinite }
    }
}

#if !(arch(x86_64) || arch(arm64))
/// Float16 is unavailable on some targets: a portable round-to-nearest-even narrowing.
enum SoftHalf {
    static func fromFloat(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if value.isNaN { return sign | 0x7e00 | UInt16((bits >> 13) & 0x3ff) }
        let exponent = Int((bits >> 23) & 0xff) - 127 + 15
        if exponent >= 31 { return sign | 0x7c00 }
        var mantissa = bits & 0x7f_ffff
        if exponent <= 0 {
            if exponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - exponent)
            let half = UInt32(1) << (shift - 1)
            let rest = mantissa & ((UInt32(1) << shift) - 1)
            var result = mantissa >> shift
            if rest > half || (rest == half && (result & 1) == 1) { result += 1 }
            return sign | UInt16(result)
        }
        var result = (UInt32(exponent) << 10) | (mantissa >> 13)
        let rest = mantissa & 0x1fff
        if rest > 0x1000 || (rest == 0x1000 && (result & 1) == 1) { result += 1 }
        return sign | UInt16(truncatingIfNeeded: result)
    }
}
#endif
