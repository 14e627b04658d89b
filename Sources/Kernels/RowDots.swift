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

    /// The same products for rows given by pointers: `out[i * k + c] = rows[i] · m_c`, the bits `compute` gives those
    /// rows wherever they sit (a row's products do not depend on the rows computed with it).
    public static func compute(rows: UnsafePointer<UnsafePointer<Float>?>, count n: Int, dimension d: Int,
                               centroids m: UnsafePointer<Float>, count k: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0 else { return }
        brickyard_row_dots_gathered(rows, n, d, m, k, out)
    }

    /// One product `a · b` over `d` floats with the bits `compute` gives that row and centroid.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension d: Int) -> Float {
        d > 0 ? brickyard_row_dot(a, b, d) : 0
    }

    /// `out[u] = a[u] · b[u]` for u < count, each with the bits of `dot`, four pairs at a time (independent chains:
    /// a lone product waits on its own fused multiply-adds).
    public static func dots(_ a: UnsafePointer<UnsafePointer<Float>?>, _ b: UnsafePointer<UnsafePointer<Float>?>,
                            count: Int, dimension d: Int, into out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        brickyard_row_dot_pairs(a, b, count, d, out)
    }

    /// `dots` forced onto `path` (capped at what this CPU has).
    static func dots(onPath path: Int, _ a: UnsafePointer<UnsafePointer<Float>?>,
                     _ b: UnsafePointer<UnsafePointer<Float>?>, count: Int, dimension d: Int,
                     into out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        brickyard_row_dot_pairs_on_path(Int32(path), a, b, count, d, out)
    }

    /// Which path `compute` takes on this machine (2 AVX-512, 1 AVX2 + FMA, 0 portable).
    public static var path: Int { Int(brickyard_row_dots_path()) }

    /// `compute` forced onto `path` (capped at what this CPU has), for the tests that every path agrees.
    static func compute(onPath path: Int, _ x: UnsafePointer<Float>, rows n: Int, dimension d: Int,
                        centroids m: UnsafePointer<Float>, count k: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0 else { return }
        brickyard_row_dots_on_path(Int32(path), x, n, d, m, k, out)
    }

    /// The gathered products forced onto `path` (capped at what this CPU has).
    static func compute(onPath path: Int, rows: UnsafePointer<UnsafePointer<Float>?>, count n: Int, dimension d: Int,
                        centroids m: UnsafePointer<Float>, count k: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0, k > 0 else { return }
        brickyard_row_dots_gathered_on_path(Int32(path), rows, n, d, m, k, out)
    }

    /// `dot` forced onto `path` (capped at what this CPU has).
    static func dot(onPath path: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension d: Int) -> Float {
        d > 0 ? brickyard_row_dot_on_path(Int32(path), a, b, d) : 0
    }
}
