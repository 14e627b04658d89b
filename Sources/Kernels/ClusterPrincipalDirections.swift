/// The best rank-one approximation σ_c u_c v_cᵀ of each cluster's sum T_c = Σ_{i∈c} x_B,i x_A,iᵀ (its top singular
/// triple), by power iterations in factored form: T_c v = Σ_{i∈c} x_B,i (x_A,i·v) and T_cᵀ u = Σ_{i∈c} x_A,i (x_B,i·u)
/// never form T_c, and both are sums over units, so a module split into blocks of units reduces them by addition in
/// block order (docs/METHODS.md, lego step 4; the contract for split modules is in docs/distributed-kmeans.md).
///
/// Why: a cluster of unrelated units (a "catch-all") has a near-zero mean whose rank-one μ_B μ_Aᵀ is mostly cross
/// terms; its members' sum still has a dominant direction, which is the rank-one that cluster can best contribute.
/// For an aligned cluster the mean already is that direction, so nothing changes there.
///
/// The units are sign-invariant here (x_B x_Aᵀ does not change when both halves flip), so the signs of the
/// clustering are not needed. Sign convention of the result: û is normalised, v̂ = T_cᵀ û / σ with σ = ‖T_cᵀ û‖ ≥ 0.
public enum ClusterPrincipalDirections {
    /// Which half a product returns: `.left` takes directions over the A half (v, [k, in]) and returns
    /// Σ_{i∈c} x_B,i (x_A,i·v_c) ([k, out]); `.right` takes directions over the B half (u, [k, out]) and returns
    /// Σ_{i∈c} x_A,i (x_B,i·u_c) ([k, in]).
    public enum Side: Sendable { case left, right }

    /// One block's share of a half-step: `units` row-major [count, out + in], `assignment` the cluster of each
    /// unit (entries outside 0..<k are skipped), `directions` row-major [k, in] (`.left`) or [k, out] (`.right`).
    /// Each unit's dot product with its own cluster's direction and its addition to that cluster's sum come from
    /// one pass (`UnitSums.dotAdd`: n dot products, not the n·k of a GEMM `X_half Wᵀ`, and no packing of X), in
    /// unit order, so a block always gives the same bits on every CPU path.
    public static func blockProduct(units: UnsafePointer<Float>, count: Int, outFeatures: Int, inFeatures: Int,
                                    assignment: ArraySlice<Int>, k: Int, directions: [Float], side: Side) -> [Float] {
        let dimension = outFeatures + inFeatures
        let read = side == .left ? (offset: outFeatures, length: inFeatures) : (offset: 0, length: outFeatures)
        let write = side == .left ? (offset: 0, length: outFeatures) : (offset: outFeatures, length: inFeatures)
        var sums = [Float](repeating: 0, count: k * write.length)
        guard count > 0, k > 0, directions.count == k * read.length else { return sums }
        sums.withUnsafeMutableBufferPointer { s in
            directions.withUnsafeBufferPointer { w in
                assignment.withUnsafeBufferPointer { a in
                    guard let s = s.baseAddress, let w = w.baseAddress, let a = a.baseAddress else { return }
                    UnitSums.dotAdd(units, rows: min(count, assignment.count), stride: dimension, read: read, write: write,
                                    clusters: a, k: k, directions: w, into: s)
                }
            }
        }
        return sums
    }

    /// A whole half-step over all units, as the ordered reduction of fixed blocks of `blockSize` units.
    public static func product(units: [Float], count: Int, outFeatures: Int, inFeatures: Int, assignment: [Int], k: Int,
                               directions: [Float], side: Side,
                               blockSize: Int = KMeansOptions.defaultBlockSize) -> [Float] {
        let dimension = outFeatures + inFeatures
        var total = [Float](repeating: 0, count: k * (side == .left ? outFeatures : inFeatures))
        units.withUnsafeBufferPointer { x in
            guard let x = x.baseAddress else { return }
            FixedBlocks.forEach(count: count, blockSize: blockSize) { start, rows in
                let part = blockProduct(units: x + start * dimension, count: rows, outFeatures: outFeatures,
                                        inFeatures: inFeatures, assignment: assignment[start..<(start + rows)], k: k,
                                        directions: directions, side: side)
                add(part, to: &total)
            }
        }
        return total
    }

    /// total += part (elementwise; the block-order reduction of `blockProduct`).
    public static func add(_ part: [Float], to total: inout [Float]) {
        precondition(part.count == total.count, "ClusterPrincipalDirections: partial sums of different shapes")
        let length = total.count
        total.withUnsafeMutableBufferPointer { t in
            part.withUnsafeBufferPointer { p in
                guard let t = t.baseAddress, let p = p.baseAddress else { return }
                BLAS.axpy(length, alpha: 1, x: p, y: t)
            }
        }
    }

    /// Scales every row of a row-major [rows, width] matrix to unit norm (zero rows stay zero); returns the norms.
    @discardableResult
    public static func normalizeRows(_ matrix: inout [Float], rows: Int, width: Int) -> [Double] {
        matrix.withUnsafeMutableBufferPointer { m in
            guard let m = m.baseAddress else { return [Double](repeating: 0, count: rows) }
            return (0..<rows).map { r in
                let norm = BLAS.nrm2(width, m + r * width)
                if norm > 0 && norm.isFinite { BLAS.scal(width, alpha: 1 / norm, x: m + r * width) }
                return Double(norm)
            }
        }
    }

    /// The starting directions: the A half of each row of `centroids` ([k, out + in]), normalised.
    public static func startingDirections(centroids: [Float], k: Int, outFeatures: Int, inFeatures: Int) -> [Float] {
        let dimension = outFeatures + inFeatures
        var start = [Float](repeating: 0, count: k * inFeatures)
        centroids.withUnsafeBufferPointer { m in
            start.withUnsafeMutableBufferPointer { v in
                guard let m = m.baseAddress, let v = v.baseAddress else { return }
                for c in 0..<k { BLAS.copy(inFeatures, x: m + c * dimension + outFeatures, y: v + c * inFeatures) }
            }
        }
        normalizeRows(&start, rows: k, width: inFeatures)
        return start
    }

    /// The rank-one units [√σ û ; √σ v̂] per cluster (row-major [k, out + in]) after `iterations` power
    /// iterations (each: u = T v, û = u/‖u‖, w = T_cᵀ û, σ = ‖w‖, v = w/σ), starting from the A halves of
    /// `centroids` (a zero A half: the cluster's first member's). At least one iteration runs (σ and v̂ need the last right product). A cluster whose product
    /// vanishes gives a zero row. Every iteration runs for every cluster (`principal(…, tolerance: 0)`).
    public static func units(units x: [Float], count: Int, outFeatures: Int, inFeatures: Int, assignment: [Int], k: Int,
                             centroids: [Float], iterations: Int,
                             blockSize: Int = KMeansOptions.defaultBlockSize) -> (units: [Float], singularValues: [Double]) {
        let result = principal(units: x, count: count, outFeatures: outFeatures, inFeatures: inFeatures,
                               assignment: assignment, k: k, centroids: centroids, iterations: iterations, tolerance: 0,
                               blockSize: blockSize)
        return (result.units, result.singularValues)
    }

    /// What `principal` found: the rank-one units, their singular values, and the power iterations each cluster ran.
    public struct Principal: Sendable {
        public var units: [Float]
        public var singularValues: [Double]
        public var iterations: [Int]
    }

    /// How far (Euclidean, between unit vectors) an iteration may still move a cluster's v̂ when lego stops that
    /// cluster's power iterations (`principal`). The rank-one's fit to the cluster moves with the square of that.
    public static let defaultTolerance = 1e-5

    /// `units` with a per-cluster stop: after each iteration, cluster c stops once ‖v̂_t − v̂_{t−1}‖ ≤ `tolerance`
    /// (v̂_0 the starting direction; power iterations keep v̂'s sign, v̂_t·v̂_{t−1} > 0). A stopped cluster keeps its
    /// û, v̂, σ and its members are skipped by later products (`UnitSums.dotAdd` skips clusters outside 0..<k), so
    /// the units read per iteration shrink as clusters converge; a running cluster's sums are those of its own
    /// members in unit order, so its bits are those it would have alone. The rule uses computed values only: the
    /// same bytes for any worker or thread count. `tolerance: 0` runs every iteration for every cluster (the bits of
    /// `units`).
    public static func principal(units x: [Float], count: Int, outFeatures: Int, inFeatures: Int, assignment: [Int],
                                 k: Int, centroids: [Float], iterations: Int, tolerance: Double,
                                 blockSize: Int = KMeansOptions.defaultBlockSize) -> Principal {
        var v = startingDirections(centroids: centroids, k: k, outFeatures: outFeatures, inFeatures: inFeatures)
        // A cluster whose mean has a zero A half (members cancelling) starts from its first member with a non-zero
        // A half instead, so it is not lost.
        let dimension = outFeatures + inFeatures
        x.withUnsafeBufferPointer { units in
            v.withUnsafeMutableBufferPointer { start in
                guard let units = units.baseAddress, let start = start.baseAddress else { return }
                for c in 0..<k where BLAS.nrm2(inFeatures, start + c * inFeatures) == 0 {
                    for (i, cluster) in assignment.enumerated() where cluster == c
                    && BLAS.nrm2(inFeatures, units + i * dimension + outFeatures) > 0 {
                        BLAS.copy(inFeatures, x: units + i * dimension + outFeatures, y: start + c * inFeatures)
                        let norm = BLAS.nrm2(inFeatures, start + c * inFeatures)
                        BLAS.scal(inFeatures, alpha: 1 / norm, x: start + c * inFeatures)
                        break
                    }
                }
            }
        }
        var u = [Float](repeating: 0, count: k * outFeatures)
        var sigma = [Double](repeating: 0, count: k)
        var runs = [Int](repeating: 0, count: k)
        var running = [Bool](repeating: true, count: k)
        var live = assignment
        for _ in 0..<max(1, iterations) {
            let stopped = running.contains(false)
            if stopped { live = assignment.map { (0..<k).contains($0) && running[$0] ? $0 : -1 } }
            var left = product(units: x, count: count, outFeatures: outFeatures, inFeatures: inFeatures,
                               assignment: live, k: k, directions: v, side: .left, blockSize: blockSize)
            normalizeRows(&left, rows: k, width: outFeatures)
            let previous = v
            var right = product(units: x, count: count, outFeatures: outFeatures, inFeatures: inFeatures,
                                assignment: live, k: k, directions: left, side: .right, blockSize: blockSize)
            let after = normalizeRows(&right, rows: k, width: inFeatures)
            if !stopped {
                u = left
                v = right
                sigma = after
            } else {
                for c in 0..<k where running[c] {
                    u.replaceSubrange((c * outFeatures)..<((c + 1) * outFeatures),
                                      with: left[(c * outFeatures)..<((c + 1) * outFeatures)])
                    v.replaceSubrange((c * inFeatures)..<((c + 1) * inFeatures),
                                      with: right[(c * inFeatures)..<((c + 1) * inFeatures)])
                    sigma[c] = after[c]
                }
            }
            for c in 0..<k where running[c] {
                runs[c] += 1
                guard tolerance > 0 else { continue }
                var moved = 0.0
                for j in (c * inFeatures)..<((c + 1) * inFeatures) {
                    let step = Double(v[j]) - Double(previous[j])
                    moved += step * step
                }
                if !(moved.squareRoot() > tolerance) { running[c] = false }
            }
            if !running.contains(true) { break }
        }
        return Principal(units: assemble(left: u, right: v, singularValues: sigma, outFeatures: outFeatures,
                                         inFeatures: inFeatures),
                         singularValues: sigma, iterations: runs)
    }

    /// Rows [√σ_c û_c ; √σ_c v̂_c] from unit-norm directions and their singular values.
    public static func assemble(left u: [Float], right v: [Float], singularValues sigma: [Double], outFeatures: Int,
                                inFeatures: Int) -> [Float] {
        let k = sigma.count, dimension = outFeatures + inFeatures
        var rows = [Float](repeating: 0, count: k * dimension)
        u.withUnsafeBufferPointer { u in
            v.withUnsafeBufferPointer { v in
                rows.withUnsafeMutableBufferPointer { r in
                    guard let u = u.baseAddress, let v = v.baseAddress, let r = r.baseAddress else { return }
                    for c in 0..<k where sigma[c] > 0 && sigma[c].isFinite {
                        let root = Float(sigma[c].squareRoot())
                        BLAS.copy(outFeatures, x: u + c * outFeatures, y: r + c * dimension)
                        BLAS.scal(outFeatures, alpha: root, x: r + c * dimension)
                        BLAS.copy(inFeatures, x: v + c * inFeatures, y: r + c * dimension + outFeatures)
                        BLAS.scal(inFeatures, alpha: root, x: r + c * dimension + outFeatures)
                    }
                }
            }
        }
        return rows
    }
}
