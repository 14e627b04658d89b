/// The merge methods Brickyard implements (see ../README.md and METHODS.md for the math).
public enum MergeMethodName: String, Sendable, Codable, CaseIterable {
    case lego, cat, svd, linear, ties
    case dareTies = "dare_ties"
    case dareLinear = "dare_linear"
    case magnitudePrune = "magnitude_prune"
}

/// Options of `lego`.
public struct LegoOptions: Sendable, Codable, Equatable {
    /// How each cluster's centroid is weighted (`ClusterReweighting`; METHODS.md, lego step 4).
    public enum Reweight: String, Sendable, Codable { case none, sum, dual, optimal }
    public enum Gauge: String, Sendable, Codable { case balanced, raw }
    /// Which rank-one units each adapter is cut into: its SVD basis (canonical), its stored columns, or per module
    /// whichever of the two clusters better (`auto`: two clusterings).
    public enum Basis: String, Sendable, Codable { case svd, raw, auto }
    /// How k-means seeds each run: greedy k-means++ (scikit-learn's default), or k-means|| (2 passes drawing ~2k
    /// candidates each, then the weighted candidates clustered into k; on modules of ≥ 8 units per cluster, greedy
    /// below that): about a third less seeding time, slightly different clusterings (docs/kernels.md).
    public enum Initialization: String, Sendable, Codable {
        case kmeansPlusPlus = "kmeans++"
        case kmeansParallel = "kmeans||"

        /// `KMeansOptions.seedingRounds` for this choice.
        public var seedingRounds: Int { self == .kmeansParallel ? 2 : 0 }
    }
    /// What each cluster contributes before its weight: the rank-one of its aligned mean (μ_B μ_Aᵀ), or the best
    /// rank-one approximation of its members' sum Σ x_B x_Aᵀ (`ClusterPrincipalDirections`). `sum` and `dual`
    /// are defined on the mean and always use it (`effectiveDirection`).
    public enum Direction: String, Sendable, Codable { case mean, principal }
    /// How a module too small for oversampling (fewer than `oversampleUnitsPerFineCluster` units per fine
    /// cluster) forms its k clusters when `oversample` > 1: `select` takes every unit as a fine cluster of its own
    /// and keeps k of them as cluster heads by greedy least squares (`RankOneSelection`), every other unit joining
    /// the head its rank-one is most aligned with; `kmeans` clusters at k (the behaviour before legoq3).
    public enum SmallPool: String, Sendable, Codable { case select, kmeans }

    public var iterations: Int = 100
    /// Stop when the relative drop of the objective is below this; 0 runs exactly `iterations`.
    public var tolerance: Double = 1e-4
    public var reweight: Reweight = .optimal
    public var gauge: Gauge = .balanced
    public var basis: Basis = .svd
    public var initialization: Initialization = .kmeansPlusPlus
    /// Seeding + Lloyd runs per module; the lowest final objective wins (scikit-learn's n_init).
    public var restarts: Int = LegoOptions.defaultRestarts
    public var direction: Direction = .principal
    /// Power iterations per module for `direction: principal` (each: two passes over the units).
    public var powerIterations: Int = LegoOptions.defaultPowerIterations
    /// With `direction: principal`: cluster into `oversample`·k fine clusters, keep the k − 1 whose principal
    /// rank-ones fit T best (greedy least squares), and merge the rest into them (pieces of the same direction) or
    /// into one cluster. 1 is off. Default 2 (chosen on the 960-adapter pool and bench-quality:
    /// bench/results/lego-pool.md); split modules oversample by rounds (`ClusterSelectionRounds`).
    public var oversample: Int = LegoOptions.defaultOversample
    /// See `SmallPool`; default `select` (chosen on bench-quality's 3-task merge: bench/results/lego-3task.md).
    public var smallPool: SmallPool = .select
    /// Alternating least-squares rounds refitting the k merged ranks jointly against T after the cluster → rank
    /// step (`FactorRefit`: B' ← T A'⁺, then A' ← B'⁺ T); 0 is off. Only with `reweight: optimal` (it continues
    /// that least-squares fit); split modules run it as rounds of block products (`FactorRefitRounds`). Default 1 (bench/results/lego-3task.md).
    /// Modules with `balance` > 0 run `balanceRounds` rounds against T̃ instead, then the core fit.
    public var refit: Int = LegoOptions.defaultRefit
    /// With unit selection (`small_pool: select`) and `reweight: optimal`: the heads are chosen, and the refit
    /// rounds run, against T̃ = Σ_t T_t/‖T_t‖^balance (each adapter's update in the module scaled toward unit norm;
    /// `TermShares`; `balanceRounds` refit rounds), then the ranks are refitted to T inside the subspaces chosen
    /// (`FactorRefit.coreFit`).
    /// 0 is off (T itself), 1 gives every adapter's update equal weight in the choice. In [0, 1]. Default 0.5
    /// (bench-quality: 3 tasks at rank 8 reach cat's accuracy; 1 loses the mixed-rank merge; 0 is the behaviour
    /// before quality4).
    public var balance: Double = LegoOptions.defaultBalance
    /// Alternating least-squares rounds against T̃ on modules with `balance` > 0 (in place of `refit`): they move the
    /// ranks toward T̃'s best subspaces (bench-quality's 3-task merge: 1 round 47%, 4 rounds 49%). In 0…64.
    public var balanceRounds: Int = LegoOptions.defaultBalanceRounds

    public static let defaultRestarts = 3
    public static let defaultPowerIterations = 8
    public static let defaultOversample = 2
    public static let defaultRefit = 1
    public static let defaultBalance = 0.5
    public static let defaultBalanceRounds = 4
    /// Oversampling applies only when the module has at least this many units per fine cluster (n ≥ 4·f·k): the
    /// selection chooses among directions that several units share; on smaller pools (fine clusters of one or two
    /// units) keeping k − 1 of them and lumping the rest into one cluster fits T worse than k-means at k (a random
    /// pool of 20 units at k = 10: 0.593 against `dual`'s 0.574), so lego clusters at k there.
    public static let oversampleUnitsPerFineCluster = 4

    /// The direction actually used: `sum` and `dual` are rules on the mean centroid, so they take `mean`.
    public var effectiveDirection: Direction {
        reweight == .sum || reweight == .dual ? .mean : direction
    }

    /// The oversampling actually used: 1 unless the direction is principal.
    public var effectiveOversample: Int { effectiveDirection == .principal ? max(1, oversample) : 1 }

    /// The number of clusters the k-means runs at for `units` units and output rank k: oversample·k when
    /// oversampling applies (`oversampleUnitsPerFineCluster`), else k.
    public func clusteringCount(units: Int, rank k: Int) -> Int {
        let fine = k * effectiveOversample
        return fine > k && units >= LegoOptions.oversampleUnitsPerFineCluster * fine ? fine : k
    }

    /// Whether a module of `units` units merged at rank k chooses its clusters by unit selection
    /// (`SmallPool.select`): oversampling is asked for but the module is below its gate, and has more units than k.
    public func selectsUnits(units: Int, rank k: Int) -> Bool {
        effectiveOversample > 1 && smallPool == .select && units > k && clusteringCount(units: units, rank: k) == k
    }

    /// The balance actually used on a module of `units` units at rank k: `balance` when it selects units with
    /// `reweight: optimal`, else 0.
    public func effectiveBalance(units: Int, rank k: Int) -> Double {
        reweight == .optimal && selectsUnits(units: units, rank: k) ? min(1, max(0, balance)) : 0
    }

    /// The refit rounds actually run: `refit` with `reweight: optimal`, else 0.
    public var effectiveRefit: Int { reweight == .optimal ? max(0, refit) : 0 }

    public init() {}
}

/// Options of `ties`, `dare_ties`, `dare_linear` and `magnitude_prune`.
public struct PruneOptions: Sendable, Codable, Equatable {
    public enum MajoritySign: String, Sendable, Codable { case total, frequency }
    /// Fraction of entries kept, in (0, 1].
    public var density: Double = 0.5
    public var majoritySign: MajoritySign = .total

    public init() {}
}

/// A fully resolved, validated merge request for every module of a job: the method, its options and the
/// output rank. Travels to workers as canonical JSON (`options_json` in the protocol).
public struct MergeSpec: Sendable, Codable, Equatable {
    public var method: MergeMethodName
    /// Output rank k (cat ignores it: its rank is Σ r_i).
    public var rank: Int
    public var lego: LegoOptions
    public var prune: PruneOptions
    /// Global strength λ (job key `scale`): the merged update of every module is multiplied by it. Stored as nil
    /// for 1 (the default), so the canonical spec JSON and job fingerprints of jobs without `scale` are unchanged.
    public var strength: Double?
    /// λ, 1 when unset.
    public var scale: Double {
        get { strength ?? 1 }
        set { strength = newValue == 1 ? nil : newValue }
    }

    enum CodingKeys: String, CodingKey {
        case method, rank, lego, prune, report
        case strength = "scale"
    }
    /// `report: minimal` skips the per-module quality figures; `exact` forces exact ones; nil (the default) computes
    /// them exactly when that fits a quarter of the merge's modelled cost, else estimates them (docs/kernels.md).
    public var report: ReportLevel?

    public init(method: MergeMethodName, rank: Int, lego: LegoOptions = LegoOptions(), prune: PruneOptions = PruneOptions(),
                scale: Double = 1, report: ReportLevel? = nil) {
        self.report = report
        self.method = method
        self.rank = rank
        self.lego = lego
        self.prune = prune
        self.strength = scale == 1 ? nil : scale
    }
}

/// How much of `merge-report.json` a job asks for (job file key `report`).
public enum ReportLevel: String, Sendable, Codable, CaseIterable {
    /// Every module's relative error against T and SVD floor (the default).
    case full
    /// Method figures only (cluster sizes, iterations, …): no quality computation at all.
    case minimal
    /// Exact figures whatever they cost (one dense pass over T, 2·out·in·R flops, where the default would estimate).
    case exact
}
