import Kernels

/// Fills the quality figures of `merge-report.json` for any method's result: the relative error against the
/// exact weighted sum T and the Eckart–Young floor at the result's rank, never forming T whole. Exact when the
/// `QualityCostModel` says the exact route fits a quarter of the merge's modelled flops (`mergeFlops`; nil = always
/// exact) or the job says `report: exact`; otherwise unbiased randomized estimates with standard errors
/// (`QualityEstimator`, docs/kernels.md "Quality figures"). What the method already knows is not recomputed:
/// exact methods (cat, lego with one cluster per unit) cost nothing; svd on an exact route has error = floor
/// (Eckart–Young); svd on the Krylov route needs only ‖T‖². `report: minimal` skips all of it.
enum ModuleQuality {
    /// The share of the merge's modelled flops the quality figures may cost before they are estimated.
    static let budgetShare = 0.25

    static func fillStats(_ result: inout ModuleResult, input: ModuleInput, minimal: Bool = false,
                          seed: UInt64 = 0, report: ReportLevel? = nil, mergeFlops: Double? = nil) throws {
        try fillStats(&result, source: ModuleTermSource(input), minimal: minimal, seed: seed, report: report,
                      mergeFlops: mergeFlops)
    }

    /// As above, reading the terms from `source` only when a figure needs T's factors, and then stacking them term
    /// by term (never the loaded input next to its stacked copy). svd's Krylov route brings its own stacked
    /// product (`KrylovCapture.product`), which every figure here reuses.
    static func fillStats(_ result: inout ModuleResult, source: ModuleTermSource, minimal: Bool = false,
                          seed: UInt64 = 0, report: ReportLevel? = nil, mergeFlops: Double? = nil) throws {
        let input = source.shapeOnly
        guard result.b.count == result.outFeatures * result.rank, result.a.count == result.rank * result.inFeatures,
              result.outFeatures == input.outFeatures, result.inFeatures == input.inFeatures else {
            throw MergeError("module \(input.name): merged factors have shapes B \(result.b.count), A \(result.a.count) "
                             + "that do not match rank \(result.rank) and [\(input.outFeatures), \(input.inFeatures)]")
        }
        // The Krylov capture holds the stacked factors and the basis: drop them once the figures are filled, so a
        // process that keeps results (in-process merges) does not keep every module's factors.
        defer { if case .truncation(let values, let norm, _?) = result.knownQuality {
            result.knownQuality = .truncation(values: values, norm: norm, capture: nil)
        } }
        if case .exact = result.knownQuality {
            result.stats.relativeError = 0
            result.stats.svdFloor = 0
            return
        }
        if minimal || report == .minimal {
            result.stats.qualityOmitted = true
            return
        }
        if case .truncation(_, let norm?, _) = result.knownQuality, let floor = result.stats.svdFloor {
            // Exact route: the truncation is the Eckart–Young one, whose error is the floor.
            result.stats.relativeError = norm > 0 ? floor : 0
            return
        }
        if case .truncation(let values, nil, let capture?) = result.knownQuality, let product = capture.product,
           report != .exact, let flops = mergeFlops,
           QualityCostModel(rows: product.rows, cols: product.cols, inner: product.inner, rank: result.rank).exactNorm
               > flops * budgetShare {
            // svd on the Krylov route, estimated: the route's own product (no second stacking of the factors).
            record(product.estimatedTruncationQuality(values: values, capture: capture, seed: seed), in: &result)
            return
        }
        let product: StackedProduct
        if case .truncation(_, nil, let capture?) = result.knownQuality, let captured = capture.product {
            product = captured  // svd's own stacked factors: not stacked a second time
        } else {
            let target = try source.stackedTarget()
            guard target.rank > 0 else {
                // T = 0: the error is reported relative to nothing, as 0 (the approximation of zero by an exact zero).
                result.stats.relativeError = 0
                result.stats.svdFloor = 0
                return
            }
            product = try target.product(outFeatures: input.outFeatures, inFeatures: input.inFeatures)
        }
        let costs = QualityCostModel(rows: input.outFeatures, cols: input.inFeatures, inner: product.inner,
                                     rank: result.rank)
        let budget = report == .exact ? nil : mergeFlops.map { $0 * budgetShare }
        if case .truncation(let values, nil, let capture) = result.knownQuality {
            if let capture, let budget, costs.exactNorm > budget {
                record(product.estimatedTruncationQuality(values: values, capture: capture, seed: seed), in: &result)
                return
            }
            let norms = product.denseNorms(approximationLeft: result.b, approximationRight: result.a, rank: result.rank)
            result.stats.relativeError = norms.target > 0 ? norms.difference / norms.target : 0
            result.stats.svdFloor = StackedProduct.floor(
                norm: norms.target, values: values,
                complete: result.rank >= min(input.outFeatures, input.inFeatures, product.inner))
            return
        }
        let wantFloor = result.stats.svdFloor == nil
        if let budget, costs.exact > budget {
            // Sketch steps that fit what the probes leave of the budget (at least 2: 3 Rayleigh–Ritz values).
            var steps = 2
            while steps < 12, costs.estimate(sketchSteps: steps + 1) <= budget { steps += 1 }
            let quality = try product.estimatedQuality(approximationLeft: result.b, approximationRight: result.a,
                                                       rank: result.rank, spectrumRank: wantFloor ? result.rank : nil,
                                                       seed: seed, sketchSteps: steps)
            let known = result.stats.svdFloor
            record(quality, in: &result)
            if !wantFloor {
                result.stats.svdFloor = known
                result.stats.svdFloorStandardError = nil
            }
            return
        }
        let quality = try product.quality(approximationLeft: result.b, approximationRight: result.a, rank: result.rank,
                                          spectrumRank: wantFloor ? result.rank : nil, seed: seed)
        result.stats.relativeError = quality.relativeError
        if wantFloor { result.stats.svdFloor = quality.floor }
    }

    static func record(_ quality: ProductQuality, in result: inout ModuleResult) {
        result.stats.relativeError = quality.relativeError
        result.stats.svdFloor = quality.floor
        result.stats.qualityEstimated = true
        result.stats.relativeErrorStandardError = quality.relativeErrorStandardError
        result.stats.svdFloorStandardError = quality.floorStandardError
    }

    /// The merge's modelled flops (multiply–add = 2), the budget the quality figures get a quarter of: svd its
    /// route (Krylov steps as run); lego restarts × (Lloyd steps + 2 for seeding) × the distance and centroid
    /// GEMMs (4·n·d·k); the task-vector methods form every task vector densely (2·out·in·R); linear adds factors.
    static func modelledMergeFlops(spec: MergeSpec, input: ModuleInput, result: ModuleResult) -> Double {
        modelledMergeFlops(spec: spec, source: ModuleTermSource(input), result: result)
    }

    /// As above, from the ranks a source knows without loading any term.
    static func modelledMergeFlops(spec: MergeSpec, source input: ModuleTermSource, result: ModuleResult) -> Double {
        let rows = input.outFeatures, cols = input.inFeatures
        let stacked = input.ranks.reduce(0) { $0 + max($1, 0) }
        let sides = Double(rows + cols), r = Double(stacked)
        switch spec.method {
        case .svd:
            let model = ProductCostModel(rows: rows, cols: cols, inner: max(stacked, 1), rank: max(spec.rank, 1),
                                         wantNorm: false)
            let route = result.stats.svdRoute.flatMap(ProductRoute.init(rawValue:)) ?? model.cheapest
            guard route == .krylov, let steps = result.stats.svdIterations, steps > 0 else { return model.cost(route) }
            return model.application(width: model.krylovWidth) + (1...steps).reduce(0.0) { $0 + model.krylovStep($1) }
        case .lego:
            // The k-means runs at oversample·k clusters when oversampling applies (its fine clustering).
            return SplitQualityTrack.legoMergeFlops(restarts: spec.lego.restarts,
                                                    iterations: result.stats.iterations ?? spec.lego.iterations,
                                                    stacked: stacked, rows: rows, cols: cols,
                                                    rank: spec.lego.clusteringCount(units: stacked,
                                                                                    rank: max(result.rank, 1)))
        case .ties, .dareTies, .dareLinear, .magnitudePrune:
            return 2 * Double(rows) * Double(cols) * r
        case .cat, .linear:
            return 2 * r * sides
        }
    }
}

extension ModuleResult {
    /// A rank-1 all-zero result for modules whose target is exactly zero (PEFT cannot load rank 0).
    static func zero(for input: ModuleInput, stats: ModuleStats = ModuleStats(relativeError: 0)) -> ModuleResult {
        ModuleResult(name: input.name, rank: 1, outFeatures: input.outFeatures, inFeatures: input.inFeatures,
                     b: [Float](repeating: 0, count: input.outFeatures), a: [Float](repeating: 0, count: input.inFeatures),
                     stats: stats)
    }
}
