import AdapterIO
import Foundation

/// `merge-report.json`: what a merge did and how close each module came to the exact weighted sum T.
/// Keys are snake_case; per-module runtime fields (worker, attempts, seconds) are filled by whichever runtime ran
/// the module and omitted when unknown.
public struct MergeReport: Codable, Sendable, Equatable {
    /// The job as resolved (defaults applied, weights normalised).
    public struct Job: Codable, Sendable, Equatable {
        public var file: String?
        public var method: String
        public var rank: Int
        public var normalize: Bool
        /// Global strength multiplying every merged update (job key `scale`).
        public var scale: Double?
        public var seed: UInt64
        public var outputDType: String
        /// The method's options after defaults (only those the method takes).
        public var options: Options
        public var adapters: [Adapter]

        enum CodingKeys: String, CodingKey {
            case file, method, rank, normalize, scale, seed, options, adapters
            case outputDType = "outputDtype"
        }
    }

    /// A method's resolved options; absent fields do not apply to the method.
    public struct Options: Codable, Sendable, Equatable {
        public var iterations: Int?
        public var tolerance: Double?
        public var reweight: String?
        public var gauge: String?
        public var basis: String?
        public var initialization: String?
        public var restarts: Int?
        public var direction: String?
        public var powerIterations: Int?
        public var oversample: Int?
        /// lego: `small_pool` (when it oversamples), `refit` (with `reweight: optimal`), and `balance` /
        /// `balance_rounds` (when small modules select units with `reweight: optimal`). Per module, the report says
        /// which of them acted (`Module.refit`, `balance`, `balanceRounds`).
        public var smallPool: String?
        public var refit: Int?
        public var balance: Double?
        public var balanceRounds: Int?
        public var density: Double?
        public var majoritySign: String?

        enum CodingKeys: String, CodingKey {
            case iterations, tolerance, reweight, gauge, basis, restarts, direction, powerIterations, oversample, density, majoritySign
            case smallPool, refit, balance, balanceRounds
            case initialization = "init"
        }

        init(_ spec: MergeSpec) {
            let keys = MergeSpec.allowedParameters(for: spec.method)
            func when<T>(_ key: String, _ value: T) -> T? { keys.contains(key) ? value : nil }
            iterations = when("iterations", spec.lego.iterations)
            tolerance = when("tolerance", spec.lego.tolerance)
            reweight = when("reweight", spec.lego.reweight.rawValue)
            gauge = when("gauge", spec.lego.gauge.rawValue)
            basis = when("basis", spec.lego.basis.rawValue)
            initialization = when("init", spec.lego.initialization.rawValue)
            restarts = when("restarts", spec.lego.restarts)
            direction = when("direction", spec.lego.effectiveDirection.rawValue)
            powerIterations = spec.lego.effectiveDirection == .principal ? when("power_iterations", spec.lego.powerIterations) : nil
            oversample = spec.lego.effectiveDirection == .principal ? when("oversample", spec.lego.effectiveOversample) : nil
            let oversamples = spec.lego.effectiveOversample > 1
            smallPool = oversamples ? when("small_pool", spec.lego.smallPool.rawValue) : nil
            let optimal = spec.lego.reweight == .optimal
            refit = optimal ? when("refit", spec.lego.effectiveRefit) : nil
            let balances = optimal && oversamples && spec.lego.smallPool == .select
            balance = balances ? when("balance", min(1, max(0, spec.lego.balance))) : nil
            balanceRounds = balances ? when("balance_rounds", max(0, spec.lego.balanceRounds)) : nil
            density = when("density", spec.prune.density)
            majoritySign = when("majority_sign", spec.prune.majoritySign.rawValue)
        }
    }

    /// One input adapter with its job weight and the weight actually used.
    public struct Adapter: Codable, Sendable, Equatable {
        public var path: String
        public var weight: Double
        public var effectiveWeight: Double
    }

    /// One output module.
    public struct Module: Codable, Sendable, Equatable {
        public var name: String
        public var method: String
        public var inputs: Int
        public var outputRank: Int
        public var relativeError: Double
        public var svdFloor: Double?
        public var clusterSizes: [Int]?
        public var iterations: Int?
        public var finalDistance: Double?
        public var truncationError: Double?
        public var clusterCoherence: [Double]?
        public var catchAllShare: Double?
        /// lego `basis: auto`: the basis chosen for this module.
        public var unitBasis: String?
        /// lego: the direction, power iterations and oversampling this module ran with (`ModuleStats`).
        public var direction: String?
        public var powerIterations: Int?
        public var oversample: Int?
        /// lego: refit rounds run against T (0 on a balanced module, whose rounds fit T̃: `balanceRounds`).
        public var refit: Int?
        /// lego: the balance power the ranks were chosen with (0: against T; split modules never balance) and, when
        /// it is > 0, the refit rounds run against T̃ before the core fit to T.
        public var balance: Double?
        public var balanceRounds: Int?
        /// svd: route of the top-k triplets and, on the Krylov route, its steps.
        public var svdRoute: String?
        public var svdIterations: Int?
        /// `report: minimal`: relative error and floor were not measured (relative_error then reads 0).
        public var qualityOmitted: Bool?
        /// Relative error and floor are randomized estimates with these standard errors (docs/kernels.md).
        public var qualityEstimated: Bool?
        public var relativeErrorStderr: Double?
        public var svdFloorStderr: Double?
        public var workerID: String?
        public var attempts: Int?
        public var seconds: Double?

        enum CodingKeys: String, CodingKey {
            case name, method, inputs, outputRank, relativeError, svdFloor, clusterSizes, iterations, finalDistance
            case truncationError, clusterCoherence, catchAllShare, attempts, seconds, svdRoute, svdIterations
            case qualityOmitted, unitBasis, qualityEstimated, relativeErrorStderr, svdFloorStderr
            case direction, powerIterations, oversample, refit, balance, balanceRounds
            case workerID = "workerId"
        }

        public init(plan: ModulePlan, method: MergeMethodName, result: ModuleResult,
                    workerID: String? = nil, attempts: Int? = nil, seconds: Double? = nil) {
            name = result.name
            self.method = method.rawValue
            inputs = plan.sources.count
            outputRank = result.rank
            relativeError = result.stats.relativeError
            svdFloor = result.stats.svdFloor
            clusterSizes = result.stats.clusterSizes
            iterations = result.stats.iterations
            finalDistance = result.stats.finalDistance
            truncationError = result.stats.truncationError
            clusterCoherence = result.stats.clusterCoherence
            catchAllShare = result.stats.catchAllShare
            unitBasis = result.stats.basis
            direction = result.stats.direction
            powerIterations = result.stats.powerIterations
            oversample = result.stats.oversample
            refit = result.stats.refit
            // Split modules never select units, so never balance (`SplitLego`): every lego module lists its balance.
            balance = result.stats.balance ?? (method == .lego ? 0 : nil)
            balanceRounds = result.stats.balanceRounds
            svdRoute = result.stats.svdRoute
            svdIterations = result.stats.svdIterations
            qualityOmitted = result.stats.qualityOmitted
            qualityEstimated = result.stats.qualityEstimated
            relativeErrorStderr = result.stats.relativeErrorStandardError
            svdFloorStderr = result.stats.svdFloorStandardError
            self.workerID = workerID
            self.attempts = attempts
            self.seconds = seconds
        }
    }

    /// Summary over all modules.
    public struct Totals: Codable, Sendable, Equatable {
        public var modules: Int
        public var meanRelativeError: Double
        public var maxRelativeError: Double
        public var wallSeconds: Double
    }

    /// Distributed runtime figures (nil for an in-process merge).
    public struct Runtime: Codable, Sendable, Equatable {
        /// Modules taken from a checkpoint of an earlier run instead of being computed.
        public var resumedModules: Int
        public var computedModules: Int
        /// Tasks handed out again after a failure or a lost worker.
        public var retries: Int
        /// Split lego modules resumed mid-k-means from a checkpoint: the round each restarted at, by module.
        public var resumedRounds: [String: Int]?

        public init(resumedModules: Int, computedModules: Int, retries: Int) {
            self.resumedModules = resumedModules
            self.computedModules = computedModules
            self.retries = retries
        }
    }

    public var brickyardVersion: String
    public var job: Job
    public var modules: [Module]
    public var totals: Totals
    public var runtime: Runtime? = nil

    /// Builds the report of `plan` from its per-module entries (in module order) and the run's wall time.
    public init(plan: MergePlan, modules: [Module], wallSeconds: Double) {
        brickyardVersion = BrickyardVersion.string
        let weights = (try? Planner.normalizedWeights(plan.job, file: "")) ?? plan.job.adapters.map(\.weight)
        job = Job(file: plan.job.sourcePath, method: plan.spec.method.rawValue, rank: plan.spec.rank,
                  normalize: plan.job.normalize, scale: plan.spec.scale, seed: plan.job.seed, outputDType: plan.job.outputDType.canonicalName,
                  options: Options(plan.spec),
                  adapters: zip(plan.job.adapters, weights).map { Adapter(path: $0.path, weight: $0.weight, effectiveWeight: $1) })
        self.modules = modules
        // Split lego modules report no error (NaN): the totals cover the modules that have one.
        let errors = modules.map(\.relativeError).filter(\.isFinite)
        let none = modules.isEmpty ? 0 : Double.nan  // every module split: no error to summarise
        totals = Totals(modules: modules.count,
                        meanRelativeError: errors.isEmpty ? none : errors.reduce(0, +) / Double(errors.count),
                        maxRelativeError: errors.max() ?? none, wallSeconds: wallSeconds)
    }

    /// Pretty, key-sorted JSON with a trailing newline (`totals` sorts last).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = try encoder.encode(self)
        data.append(0x0a)
        return data
    }

    public static func decode(_ data: Data) throws -> MergeReport {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(MergeReport.self, from: data)
    }
}
