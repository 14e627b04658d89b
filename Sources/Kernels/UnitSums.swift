import CSIMD

/// Per-cluster sums over units in unit order, by CSIMD kernels (AVX-512, AVX2 + FMA or portable C, chosen at run
/// time like `RowDots`; every path gives the same bits): the k-means centroid sums and lego's power-iteration
/// products. Each element of a sum gets one rounded addition per unit (after one rounded product for `dotAdd`,
/// never fused), so the bits depend on the unit order alone.
public enum UnitSums {
    /// `sums[cluster[i]] += signs[i] < 0 ? −x_i : x_i` for i < n in order; `x` [n, d], `sums` [k, d] row-major;
    /// clusters outside 0..<k are skipped. The bits of an axpy with alpha = ±1.
    public static func signed(_ x: UnsafePointer<Float>, rows n: Int, dimension d: Int, clusters: UnsafePointer<Int>,
                              signs: UnsafePointer<Float>, k: Int, into sums: UnsafeMutablePointer<Float>) {
        guard n > 0, d > 0, k > 0 else { return }
        brickyard_signed_sums(x, n, d, clusters, signs, k, sums)
    }

    /// For each unit i < n (rows of `x`, `stride` floats apart) in order whose cluster c is in 0..<k:
    /// w = x_i[read] · directions_c (`RowDots`' sum), and `sums_c += w · x_i[write]` unless w = 0.
    /// `read` / `write` are (offset, length) ranges of a row; directions [k, read.length], sums [k, write.length].
    public static func dotAdd(_ x: UnsafePointer<Float>, rows n: Int, stride: Int, read: (offset: Int, length: Int),
                              write: (offset: Int, length: Int), clusters: UnsafePointer<Int>, k: Int,
                              directions: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0, read.length > 0, write.length > 0 else { return }
        brickyard_cluster_dot_add(x, n, stride, read.offset, read.length, write.offset, write.length, clusters, k,
                                  directions, sums)
    }

    /// `signed` forced onto `path` (capped at what this CPU has), for the tests that every path agrees.
    static func signed(onPath path: Int, _ x: UnsafePointer<Float>, rows n: Int, dimension d: Int,
                       clusters: UnsafePointer<Int>, signs: UnsafePointer<Float>, k: Int,
                       into sums: UnsafeMutablePointer<Float>) {
        guard n > 0, d > 0, k > 0 else { return }
        brickyard_signed_sums_on_path(Int32(path), x, n, d, clusters, signs, k, sums)
    }

    /// `dotAdd` forced onto `path` (capped at what this CPU has).
    static func dotAdd(onPath path: Int, _ x: UnsafePointer<Float>, rows n: Int, stride: Int,
                       read: (offset: Int, length: Int), write: (offset: Int, length: Int),
                       clusters: UnsafePointer<Int>, k: Int, directions: UnsafePointer<Float>,
                       into sums: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0, read.length > 0, write.length > 0 else { return }
        brickyard_cluster_dot_add_on_path(Int32(path), x, n, stride, read.offset, read.length, write.offset,
                                          write.length, clusters, k, directions, sums)
    }
}
