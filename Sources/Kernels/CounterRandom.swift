/// Counter-based random numbers: value number `index` of stream `key` is a pure function of (key, index).
/// Dense task-vector masks and sketches use it so a value never depends on how the matrix was split into
/// blocks, on thread count or on which process computed it.
public enum CounterRandom {
    /// SplitMix64's finaliser: a bijection on 64-bit words that spreads every input bit over the output.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// The key of sub-stream `stream` of `seed` (for example one adapter of a module).
    public static func streamKey(seed: UInt64, stream: UInt64) -> UInt64 {
        mix(seed ^ mix(stream &+ 0x6a09_e667_f3bc_c909))
    }

    /// Uniform in [0, 1) with 24 bits, exactly representable as Float.
    @inline(__always)
    public static func uniform(key: UInt64, index: UInt64) -> Float {
        Float(mix(key &+ index &* 0xd1b5_4a32_d192_ed03) >> 40) * 0x1p-24
    }

    /// 32 random bits for entry `index` of stream `key`: two rounds of MurmurHash3's 32-bit finaliser keyed by both
    /// halves of the key. Only 32-bit multiplies, so per-entry masks over large matrices vectorise.
    @inline(__always)
    public static func bits32(key: UInt64, index: UInt32) -> UInt32 {
        var h = fmix32(index &+ UInt32(truncatingIfNeeded: key))
        h = fmix32(h ^ UInt32(truncatingIfNeeded: key >> 32))
        return h
    }

    @inline(__always)
    static func fmix32(_ value: UInt32) -> UInt32 {
        var h = value
        h ^= h >> 16
        h &*= 0x85eb_ca6b
        h ^= h >> 13
        h &*= 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    /// Standard normal by Box–Muller from two 53-bit uniforms of the same counter slot.
    public static func gaussian(key: UInt64, index: UInt64) -> Float {
        let first = mix(key &+ (2 &* index) &* 0xd1b5_4a32_d192_ed03)
        let second = mix(key &+ (2 &* index &+ 1) &* 0xd1b5_4a32_d192_ed03)
        // 1 - u keeps the logarithm's argument in (0, 1].
        let u1 = 1 - Double(first >> 11) * 0x1p-53
        let u2 = Double(second >> 11) * 0x1p-53
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
