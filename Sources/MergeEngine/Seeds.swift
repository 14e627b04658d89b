/// Per-module random seeds. A module's stream depends on (job seed, module name) only, never on which
/// worker or thread computes it, so results are identical for any worker count, retry or restart.
public enum ModuleSeed {
    /// FNV-1a of the UTF-8 module name, mixed with the job seed by SplitMix64's finaliser.
    public static func derive(jobSeed: UInt64, module: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in module.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return mix(jobSeed ^ mix(hash))
    }

    /// SplitMix64 finaliser: a bijection that spreads every input bit over the output.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
