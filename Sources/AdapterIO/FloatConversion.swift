/// Conversions between the stored element types and Float32. Loops work on raw bit patterns with no
/// branches the compiler cannot turn into selects, so they vectorise; nothing allocates per element.
public enum FloatConversion {
    /// Decodes `count` elements of `dtype` from `source` (unaligned, little-endian) into `destination`.
    /// Returns false if any element is NaN or ±Inf: the check rides along in the same pass, on the stored bits.
    @discardableResult
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType, into destination: UnsafeMutableBufferPointer<Float>) -> Bool {
        let count = min(destination.count, source.count / dtype.byteSize)
        guard count > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return true }
        // Each loop ORs "exponent is all ones" into `special` with arithmetic only (e + 1 overflows into the
        // next bit exactly when e is all ones), so it vectorises with the conversion.
        var special: UInt32 = 0
        switch dtype {
        case .f32:
            for i in 0..<count {
                let bits = src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                special |= (((bits >> 23) & 0xff) &+ 1) >> 8
                dst[i] = Float(bitPattern: bits)
            }
        case .bf16:
            for i in 0..<count {
                let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                special |= (((bits >> 7) & 0xff) &+ 1) >> 8
                dst[i] = Float(bitPattern: bits << 16)
            }
        case .f16:
            for i in 0..<count {
                let bits = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                special |= ((UInt32(bits >> 10) & 0x1f) &+ 1) >> 5
                dst[i] = halfToFloat(bits)
            }
        case .f64:
            for i in 0..<count {
                let value = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
                special |= (((value.bitPattern >> 23) & 0xff) &+ 1) >> 8
                dst[i] = value
            }
        }
        return special == 0
    }

    /// Decodes raw bytes (for example a tensor sent inline over the wire) into a new array.
    public static func decode(_ source: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
        decodeChecked(source, dtype: dtype).values
    }

    /// Decodes into a new array and reports whether every value is finite.
    public static func decodeChecked(_ source: UnsafeRawBufferPointer, dtype: DType) -> (values: [Float], finite: Bool) {
        let count = source.count / dtype.byteSize
        var finite = true
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            finite = decode(source, dtype: dtype, into: buffer)
            initialized = count
        }
        return (values, finite)
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

    /// Index of the first element that is NaN or ±Inf, or nil. The flag scan vectorises; the position is only
    /// searched for when there is one.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        var special: UInt32 = 0
        for value in values { special |= (((value.bitPattern >> 23) & 0xff) &+ 1) >> 8 }
        guard special != 0 else { return nil }
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
