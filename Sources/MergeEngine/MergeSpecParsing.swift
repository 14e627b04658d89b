/// Turning a job's free-form `parameters` into a validated `MergeSpec`: every option is checked against the
/// method, with one-line errors naming the job file and the key.
extension MergeSpec {
    /// The options each method accepts.
    static func allowedParameters(for method: MergeMethodName) -> Set<String> {
        switch method {
        case .lego: ["iterations", "tolerance", "reweight", "gauge", "basis", "init", "restarts", "direction",
                     "power_iterations", "oversample", "refit", "small_pool", "balance", "balance_rounds"]
        case .ties, .dareTies: ["density", "majority_sign"]
        case .dareLinear, .magnitudePrune: ["density"]
        case .cat, .svd, .linear: []
        }
    }

    /// Validates `job` and resolves its defaults. `largestInputRank` is the rank used when the job sets none.
    public static func resolve(job: JobSpec, largestInputRank: Int) throws -> MergeSpec {
        let reader = ParameterReader(job: job)
        let rank = job.rank ?? largestInputRank
        guard rank >= 1 else {
            throw reader.error(key: "rank", job.rank == nil ? "no input has a rank ≥ 1" : "must be at least 1, got \(rank)")
        }
        let allowed = allowedParameters(for: job.method)
        if let unknown = job.parameters.keys.sorted().first(where: { !allowed.contains($0) }) {
            let accepted = allowed.isEmpty ? "it takes no parameters" : "accepted: \(allowed.sorted().joined(separator: ", "))"
            throw reader.error(key: "parameters.\(unknown)", "unknown option for method \(job.method.rawValue) (\(accepted))")
        }
        guard job.scale.isFinite, job.scale != 0 else {
            throw reader.error(key: "scale", "must be a finite, non-zero number, got \(job.scale)")
        }
        var spec = MergeSpec(method: job.method, rank: rank, scale: job.scale)
        spec.report = job.report == .full ? nil : job.report
        switch job.method {
        case .lego:
            if let iterations = try reader.integer("iterations", atLeast: 1) { spec.lego.iterations = iterations }
            if let restarts = try reader.integer("restarts", atLeast: 1) { spec.lego.restarts = restarts }
            if let tolerance = try reader.number("tolerance") {
                guard tolerance >= 0, tolerance.isFinite else {
                    throw reader.error(key: "parameters.tolerance", "must be a finite number ≥ 0, got \(tolerance)")
                }
                spec.lego.tolerance = tolerance
            }
            if let reweight: LegoOptions.Reweight = try reader.choice("reweight") { spec.lego.reweight = reweight }
            if let gauge: LegoOptions.Gauge = try reader.choice("gauge") { spec.lego.gauge = gauge }
            if let basis: LegoOptions.Basis = try reader.choice("basis") { spec.lego.basis = basis }
            if let initialization: LegoOptions.Initialization = try reader.choice("init") { spec.lego.initialization = initialization }
            if let direction: LegoOptions.Direction = try reader.choice("direction") {
                if direction == .principal, spec.lego.reweight == .sum || spec.lego.reweight == .dual {
                    throw reader.error(key: "parameters.direction", "principal needs reweight optimal or none "
                                       + "(\(spec.lego.reweight.rawValue) is defined on the mean centroid)")
                }
                spec.lego.direction = direction
            }
            if let iterations = try reader.integer("power_iterations", atLeast: 1) { spec.lego.powerIterations = iterations }
            if let oversample = try reader.integer("oversample", in: 1...64) { spec.lego.oversample = oversample }
            if let refit = try reader.integer("refit", in: 0...64) { spec.lego.refit = refit }
            if let smallPool: LegoOptions.SmallPool = try reader.choice("small_pool") { spec.lego.smallPool = smallPool }
            if let balance = try reader.number("balance") {
                guard balance >= 0, balance <= 1 else {
                    throw reader.error(key: "parameters.balance", "must be in 0…1, got \(balance)")
                }
                spec.lego.balance = balance
            }
            if let rounds = try reader.integer("balance_rounds", in: 0...64) { spec.lego.balanceRounds = rounds }
        case .ties, .dareTies, .dareLinear, .magnitudePrune:
            if let density = try reader.number("density") {
                guard density > 0, density <= 1 else {
                    throw reader.error(key: "parameters.density", "must be in (0, 1], got \(density)")
                }
                spec.prune.density = density
            }
            if let sign: PruneOptions.MajoritySign = try reader.choice("majority_sign") { spec.prune.majoritySign = sign }
        case .cat, .svd, .linear:
            break
        }
        return spec
    }
}

/// Typed access to `parameters` with errors that name the job file and key.
private struct ParameterReader {
    let job: JobSpec

    var file: String { job.sourcePath ?? "job" }

    func error(key: String, _ problem: String) -> MergeError {
        MergeError("\(file): \(key): \(problem)")
    }

    func integer(_ key: String) throws -> Int? {
        guard let value = job.parameters[key] else { return nil }
        switch value {
        case .int(let integer): return integer
        case .double(let number) where number.rounded() == number && abs(number) < 1e15: return Int(number)
        default: throw error(key: "parameters.\(key)", "expected an integer, got \(describe(value))")
        }
    }

    /// An integer option of at least `minimum`.
    func integer(_ key: String, atLeast minimum: Int) throws -> Int? {
        guard let value = try integer(key) else { return nil }
        guard value >= minimum else { throw error(key: "parameters.\(key)", "must be at least \(minimum), got \(value)") }
        return value
    }

    /// An integer option inside `range`.
    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = try integer(key) else { return nil }
        guard range.contains(value) else {
            throw error(key: "parameters.\(key)", "must be in \(range.lowerBound)…\(range.upperBound), got \(value)")
        }
        return value
    }

    func number(_ key: String) throws -> Double? {
        guard let value = job.parameters[key] else { return nil }
        switch value {
        case .int(let integer): return Double(integer)
        case .double(let number): return number
        default: throw error(key: "parameters.\(key)", "expected a number, got \(describe(value))")
        }
    }

    func choice<Choice: RawRepresentable & CaseIterableNames>(_ key: String) throws -> Choice? where Choice.RawValue == String {
        guard let value = job.parameters[key] else { return nil }
        guard case .string(let text) = value, let parsed = Choice(rawValue: text) else {
            throw error(key: "parameters.\(key)", "expected one of \(Choice.names.joined(separator: ", ")), got \(describe(value))")
        }
        return parsed
    }

    private func describe(_ value: ParameterValue) -> String {
        switch value {
        case .bool(let flag): "\(flag)"
        case .int(let integer): "\(integer)"
        case .double(let number): "\(number)"
        case .string(let text): "\"\(text)\""
        }
    }
}

/// Option enums list their accepted spellings in error messages.
protocol CaseIterableNames { static var names: [String] { get } }
extension LegoOptions.Reweight: CaseIterableNames { static var names: [String] { ["none", "sum", "dual", "optimal"] } }
extension LegoOptions.Basis: CaseIterableNames { static var names: [String] { ["svd", "raw", "auto"] } }
extension LegoOptions.Gauge: CaseIterableNames { static var names: [String] { ["balanced", "raw"] } }
extension LegoOptions.SmallPool: CaseIterableNames { static var names: [String] { ["select", "kmeans"] } }
extension LegoOptions.Direction: CaseIterableNames { static var names: [String] { ["principal", "mean"] } }
extension LegoOptions.Initialization: CaseIterableNames { static var names: [String] { ["kmeans++", "kmeans||"] } }
extension PruneOptions.MajoritySign: CaseIterableNames { static var names: [String] { ["total", "frequency"] } }
