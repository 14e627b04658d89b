import Foundation

/// Plain-language warnings about a finished merge's quality, printed by the CLI after its summary: modules whose
/// error exceeds 1 (farther from the exact sum T than no adapter at all) and lego modules where most units sit in
/// incoherent "catch-all" clusters and the error is above the SVD floor (`clusteringCostsAccuracy`). Each names the
/// option that would help.
extension MergeReport {
    public var qualityWarnings: [String] {
        var warnings: [String] = []
        let lego = job.method == MergeMethodName.lego.rawValue
        let above = modules.filter { $0.relativeError > 1 }
        if let worst = above.max(by: { $0.relativeError < $1.relativeError }) {
            warnings.append("\(above.count) of \(modules.count) modules have a relative error above 1 (worst "
                            + String(format: "%.2f", worst.relativeError) + " in \(worst.name)): the merge is farther "
                            + "from the exact weighted sum than no adapter at all; \(errorAdvice)")
        }
        if lego {
            let crowded = modules.filter { ($0.catchAllShare ?? 0) > 0.5 && $0.clusteringCostsAccuracy }
            if let worst = crowded.max(by: { ($0.catchAllShare ?? 0) < ($1.catchAllShare ?? 0) }) {
                warnings.append("\(crowded.count) of \(modules.count) modules have most units in incoherent clusters "
                                + "(catch-all share up to " + String(format: "%.0f%%", 100 * (worst.catchAllShare ?? 0))
                                + " in \(worst.name)): the pool holds more directions than rank \(job.rank); \(coherenceAdvice)")
            }
        }
        return warnings
    }

    /// The largest gap between a module's relative error and its SVD floor that counts as "at the floor":
    /// 1 point of relative error, or 5 % of the floor on pools whose floor is high (the 960-adapter pool: lego 0.834
    /// against svd 0.817).
    static func floorSlack(_ floor: Double) -> Double { max(0.01, 0.05 * floor) }

    private var errorAdvice: String {
        guard job.method == MergeMethodName.lego.rawValue else {
            return "use method: svd (the best rank-\(job.rank) approximation) or method: cat (exact)"
        }
        switch job.options.reweight {
        case "sum", "none": return "set parameters.reweight: dual (or optimal)"
        case "dual": return "set parameters.reweight: optimal, or use method: svd"
        default: return "raise rank, or use method: svd"
        }
    }

    private var coherenceAdvice: String {
        var options: [String] = []
        if job.options.basis == "raw" { options.append("parameters.basis: svd") }
        if job.options.reweight != "optimal" { options.append("parameters.reweight: optimal") }
        options.append("a higher rank")
        options.append("method: svd")
        return "try " + options.joined(separator: ", ")
    }
}

extension MergeReport.Module {
    /// Whether this module's incoherent clusters may have cost accuracy: its error is above the SVD floor by more
    /// than `floorSlack` (the refit and the optimal weights can make a merge of catch-all clusters as good as the
    /// best rank-k approximation, e.g. a pool of exactly k shared directions; then no rank or method does better).
    /// Unknown when the quality figures were not measured (`report: minimal`, no floor): assumed to.
    var clusteringCostsAccuracy: Bool {
        guard qualityOmitted != true, relativeError.isFinite, let floor = svdFloor, floor.isFinite else { return true }
        return relativeError - floor > MergeReport.floorSlack(floor)
    }
}
