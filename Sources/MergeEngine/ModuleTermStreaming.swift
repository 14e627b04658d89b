import Kernels

/// What methods build from a `ModuleTermSource` term by term, so the Float32 input of a module is never held
/// whole next to it: lego's unit matrix (the k-means needs every unit at once, for every Lloyd step: that matrix,
/// Σ r_i × (out + in) Float32, is the method's working set, bounded by the task budget `max_task_mb`, which splits a
/// module whose units exceed it) and svd's stacked factors. Peak memory is that result plus one adapter's factors.
extension ModuleTermSource {
    /// Term `index`, checked like `ModuleInput.factorTerms()` (shape of each factor, finite coefficient).
    func checkedTerm(_ index: Int) throws -> LoraTerm {
        let term = try term(index)
        guard term.rank == ranks[index], term.a.count == term.rank * inFeatures, term.b.count == outFeatures * term.rank else {
            throw MergeError("module \(name): term \(index) has rank \(term.rank) but A has \(term.a.count) and "
                             + "B \(term.b.count) values (expected [\(ranks[index]), \(inFeatures)] and "
                             + "[\(outFeatures), \(ranks[index])])")
        }
        guard term.coefficient.isFinite else {
            throw MergeError("module \(name): term \(index) has a non-finite coefficient \(term.coefficient)")
        }
        return term
    }

    /// lego's rank-one units, extracted as each term is loaded (`RankOneUnits.extract(ranks:…)`): the same bytes
    /// as `RankOneUnits.extract(terms:)` on the loaded input.
    func units(gauge: UnitGauge, basis: UnitBasis) throws -> RankOneUnits {
        try RankOneUnits.extract(ranks: ranks, outFeatures: outFeatures, inFeatures: inFeatures, gauge: gauge,
                                 basis: basis) { try checkedTerm($0) }
    }

    /// A module with this source's name and shape and no terms: what `ModuleQuality` needs when it computes
    /// nothing (exact results, `report: minimal`).
    var shapeOnly: ModuleInput {
        ModuleInput(name: name, outFeatures: outFeatures, inFeatures: inFeatures, terms: [])
    }
}

extension ModuleResult {
    /// A rank-1 all-zero result (PEFT cannot load rank 0), for a module whose units are all zero.
    static func zero(for source: ModuleTermSource, stats: ModuleStats) -> ModuleResult {
        zero(for: source.shapeOnly, stats: stats)
    }
}
