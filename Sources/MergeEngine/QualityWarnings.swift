import Foundation

/// Plain-language warnings about a finished merge's quality, printed by the CLI after its summary: modules whose
/// error exceeds 1 (farther from the exact sum T than no adapter at all) and lego modules where most units sit in
/// incoherent "catch-all" clusters. Each names the option that would help.
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
            let crowded = modules.filter { ($0.catchAllShare ?? 0) > 0.5 }
            if let worst = crowded.max(by: { ($0.catchAllShare ?? 0) < ($1.catchAllShare ?? 0) }) {
                warnings.append("\(crowded.count) of \(modules.count) modules have most units in incoherent clusters "
                                + "(catch-all share up to " + String(format: "%.0f%%", 100 * (worst.catchAllShare ?? 0))
                                + " in \(worst.name)): the pool holds more directions than rank \(job.rank); \(coherenceAdvice)")
            }
        }
        return warnings
    }

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
