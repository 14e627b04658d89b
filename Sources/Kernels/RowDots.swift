import CSIMD

/// x_i · m_c for every row of a unit block and every centroid: the k-means distance products. A skinny GEMM
/// `X Mᵀ` (k ≤ a few dozen) spends as long packing X as multiplying (OpenBLAS copies the whole block for every
/// call); CSIMD's kernel reads X once, in place, with the centroids held in L1 (AVX-512, AVX2 + FMA or portable C,
/// chosen at run time). Every path sums in the same order (16 lanes by fused multiply-add, then pairwise), so the
/// bits do not depend on the CPU path, the thread count or the block a row sits in.
public enum RowDots {
    /// `out[i * k + c] = x_i · m_c` for `x` [n, d] and `m` [k, d], both row-major.
    public static func compute(_ x: UnsafePointer<Float>, rows n: Int, dimension d: Int, centroids m: UnsafePointer<Float>,
                               count k: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0 else { return }
        brickyard_row_dots(x, n, d, m, k, out)
    }

    /// Which path `compute` takes on this machine (2 AVX-512, 1 AVX2 + FMA, 0 portable).
    public static var path: Int { Int(brickyard_row_dots_path()) }

    /// `compute` forced onto `path` (capped at what this CPU has), for the tests that every path agrees.
    static func compute(onPath path: Int, _ x: UnsafePointer<Float>, rows n: Int, dimension d: Int,
                        centroids m: UnsafePointer<Float>, count k: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0 else { return }
        brickyard_row_dots_on_path(Int32(path), x, n, d, m, k, out)
    }
}
