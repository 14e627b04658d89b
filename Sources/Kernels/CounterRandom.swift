/// Counter-based random numbers: value number `index` of stream `key` is a pure function of (key, index).
/// DARE masks use it so a mask entry never depends on how the matrix was split into blocks, on thread count or on
/// which process computed it.
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

    /// 32 random bits for entry `index` of stream `key`: two rounds of MurmurHash3's 32-bit finaliser keyed by both
    /// halves of the key. Four 32-bit multiplies per entry: cheap next to building the entry itself.
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
}

