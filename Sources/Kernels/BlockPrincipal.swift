/// The block side of lego's `direction: principal` on a split module: one block's share of a power-iteration
/// half-step (`ClusterPrincipalDirections.blockProduct`) over the block's final assignment, sent with the round
/// because blocks keep no state (members of stopped clusters marked as skipped, the directions those of the running
/// clusters only); and the fallback start of a cluster whose mean has a zero A half. Pure functions
/// of (block, request), so every worker gives the bytes of the unsplit method's block of the same units.
extension BlockKMeans {
    static func principal(_ block: UnitBlock, request: BlockRoundRequest) throws -> BlockPartial {
        try requireCenters(request)
        let k = request.centerCount, out = block.outFeatures, inFeatures = block.dimension - block.outFeatures
        guard let sent = request.assignment, sent.count == block.count else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "a \(request.kind) round needs the assignment of the "
                                   + "block's \(block.count) units (got \(request.assignment?.count ?? 0))")
        }
        // A power round skips the members of stopped clusters (`PrincipalDirectionRounds.skippedCluster`).
        let skipped = request.kind == .principalStart ? nil : PrincipalDirectionRounds.skippedCluster
        guard sent.allSatisfy({ Int($0) < k || $0 == skipped }) else {
            throw KernelShapeError(kernel: "BlockKMeans", problem: "assignment to a cluster outside 0..<\(k)")
        }
        let assignment = sent.map { $0 == skipped ? -1 : Int($0) }
        switch request.kind {
        case .principalStart:
            return BlockPartial(kind: .principalStart, unitCount: block.count,
                                units: firstMembers(block, assignment: assignment, directions: request.centers, k: k))
        case .principalLeft, .principalRight:
            let sums = block.vectors.withUnsafeBufferPointer { x -> [Float] in
                guard let x = x.baseAddress else {
                    return [Float](repeating: 0, count: k * (request.kind == .principalLeft ? out : inFeatures))
                }
                return ClusterPrincipalDirections.blockProduct(
                    units: x, count: block.count, outFeatures: out, inFeatures: inFeatures, assignment: assignment[...],
                    k: k, directions: request.centers, side: request.kind == .principalLeft ? .left : .right)
            }
            return BlockPartial(kind: request.kind, unitCount: block.count, sums: sums)
        default:
            throw KernelShapeError(kernel: "BlockKMeans", problem: "\(request.kind) is not a principal-direction round")
        }
    }

    /// For each cluster whose starting direction (row of `directions`, [k, in]) is zero, the block's first member
    /// with a non-zero A half (the test `ClusterPrincipalDirections.units` applies), by value, in cluster order.
    static func firstMembers(_ block: UnitBlock, assignment: [Int], directions: [Float], k: Int) -> [ReportedUnit] {
        let dim = block.dimension, out = block.outFeatures, inFeatures = dim - out
        var reported: [ReportedUnit] = []
        block.vectors.withUnsafeBufferPointer { x in
            directions.withUnsafeBufferPointer { v in
                guard let x = x.baseAddress, let v = v.baseAddress else { return }
                for c in 0..<k where BLAS.nrm2(inFeatures, v + c * inFeatures) == 0 {
                    guard let i = assignment.indices.first(where: {
                        assignment[$0] == c && BLAS.nrm2(inFeatures, x + $0 * dim + out) > 0
                    }) else { continue }
                    reported.append(ReportedUnit(id: block.ids[i], first: 0, second: 0, cluster: c, index: i,
                                                 vector: row(block, i)))
                }
            }
        }
        return reported
    }
}
