/// The block side of a split module's quality track (`SplitQualityTrack`): products of the block's part of the
/// target, T_b = Σ_u b_u a_uᵀ (a unit row is [b_u | a_u]; coefficients and gauge are folded into the units, so
/// Σ_b T_b = T), with a matrix. Every product is linear in T_b, so the coordinator's sum over blocks in block
/// order is the same product of T. T_b is never formed except in the `target` round: two GEMMs per chunk of unit
/// rows, accumulated in chunk order (pure functions of block and request: the same bits on every worker).
extension BlockKMeans {
    /// Largest Gaussian probe count, and largest sketch width, a product round accepts.
    public static let maxProductColumns = 512

    static func product(_ block: UnitBlock, request: BlockRoundRequest, seed: UInt64) throws -> BlockPartial {
        let out = block.outFeatures, inFeatures = block.dimension - block.outFeatures
        let width = request.centerCount
        guard (0...maxProductColumns).contains(width), (0...maxProductColumns).contains(request.probes) else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "a \(request.kind) round of \(request.probes) probes "
                                   + "and \(width) columns is outside 0...\(maxProductColumns)")
        }
        let sums: [Float]
        switch request.kind {
        case .probeImage:
            guard request.probes + width > 0 else {
                throw KernelShapeError(kernel: "BlockKMeans", problem: "a probe round without probes")
            }
            let matrix = SplitQualityTrack.probeMatrix(seed: seed, inFeatures: inFeatures, probes: request.probes,
                                                       sketchWidth: width)
            sums = accumulate(block, first: out, firstWidth: inFeatures, second: 0, secondWidth: out,
                              matrix: matrix, columns: request.probes + width)
        case .targetTimes:
            sums = accumulate(block, first: out, firstWidth: inFeatures, second: 0, secondWidth: out,
                              matrix: request.centers, columns: width)
        case .targetTransposedTimes:
            sums = accumulate(block, first: 0, firstWidth: out, second: out, secondWidth: inFeatures,
                              matrix: request.centers, columns: width)
        case .target:
            sums = target(block)
        default:
            throw KernelShapeError(kernel: "BlockKMeans", problem: "\(request.kind) is not a product round")
        }
        return BlockPartial(kind: request.kind, unitCount: block.count, sums: sums)
    }

    /// Σ over chunks of unit rows of S_chunkᵀ (F_chunk M): F the columns [first, first + firstWidth) of the unit
    /// rows, S the columns [second, second + secondWidth), M row-major [firstWidth, columns]. Row-major
    /// [secondWidth, columns]. With F = A-part and S = B-part this is T_b M; swapped, T_bᵀ M.
    static func accumulate(_ block: UnitBlock, first: Int, firstWidth: Int, second: Int, secondWidth: Int,
                           matrix: [Float], columns: Int) -> [Float] {
        let dim = block.dimension
        var result = [Float](repeating: 0, count: secondWidth * columns)
        guard columns > 0, block.count > 0 else { return result }
        var projected = [Float](repeating: 0, count: min(chunkRows, block.count) * columns)
        FixedBlocks.forEach(count: block.count, blockSize: chunkRows) { start, rows in
            block.vectors.withUnsafeBufferPointer { x in
                matrix.withUnsafeBufferPointer { m in
                    projected.withUnsafeMutableBufferPointer { p in
                        result.withUnsafeMutableBufferPointer { c in
                            guard let x = x.baseAddress, let m = m.baseAddress, let p = p.baseAddress,
                                  let c = c.baseAddress else { return }
                            let rowsStart = x + start * dim
                            BLAS.gemm(.none, .none, m: rows, n: columns, k: firstWidth, a: rowsStart + first, lda: dim,
                                      b: m, ldb: columns, c: p, ldc: columns)
                            BLAS.gemm(.transpose, .none, m: secondWidth, n: columns, k: rows, a: rowsStart + second,
                                      lda: dim, b: p, ldb: columns, beta: start == 0 ? 0 : 1, c: c, ldc: columns)
                        }
                    }
                }
            }
        }
        return result
    }

    /// T_b = Σ_u b_u a_uᵀ, row-major [out, in], one GEMM per chunk of unit rows accumulated in chunk order.
    static func target(_ block: UnitBlock) -> [Float] {
        let dim = block.dimension, out = block.outFeatures, inFeatures = dim - out
        var result = [Float](repeating: 0, count: out * inFeatures)
        FixedBlocks.forEach(count: block.count, blockSize: chunkRows) { start, rows in
            block.vectors.withUnsafeBufferPointer { x in
                result.withUnsafeMutableBufferPointer { c in
                    guard let x = x.baseAddress, let c = c.baseAddress else { return }
                    let rowsStart = x + start * dim
                    BLAS.gemm(.transpose, .none, m: out, n: inFeatures, k: rows, a: rowsStart, lda: dim,
                              b: rowsStart + out, ldb: dim, beta: start == 0 ? 0 : 1, c: c, ldc: inFeatures)
                }
            }
        }
        return result
    }
}
