import Kernels

/// Per-module figures for `merge-report.json`. Optional fields are those a method does not produce.
public struct ModuleStats: Sendable, Codable, Equatable {
    /// ‖B'A' − T‖_F / ‖T‖_F against the exact weighted sum T (0 when T = 0).
    public var relativeError: Double
    /// Relative error of the truncated SVD of T at the output rank (Eckart–Young floor).
    public var svdFloor: Double?
    /// lego: members per cluster, in output-rank order.
    public var clusterSizes: [Int]?
    /// lego: Lloyd iterations run.
    public var iterations: Int?
    /// lego: final k-means objective (sum of sign-invariant squared distances).
    public var finalDistance: Double?
    /// lego: coherence of each cluster, ‖Σ aligned members‖ / Σ ‖members‖ (1 = all alike, ≈ 1/√n unrelated).
    public var clusterCoherence: [Double]?
    /// lego with `basis: auto`: the basis the module was merged in (`svd` or `raw`).
    public var basis: String?
    /// lego: what each cluster contributed (`principal`: its members' best rank-one after `powerIterations` power
    /// iterations; `mean`), and the oversampling factor its k-means ran at (1: clustered at k), as run on this
    /// module (split modules and modules below the oversampling gate differ from the job's options).
    public var direction: String?
    public var powerIterations: Int?
    public var oversample: Int?
    /// lego: alternating least-squares rounds run against T after the cluster → rank step (0: none; a balanced
    /// module runs its rounds against T̃ instead: `balanceRounds`).
    public var refit: Int?
    /// lego: the `balance` power p its ranks were chosen with (against T̃ = Σ_t T_t/‖T_t‖^p; 0: against T itself),
    /// and, when p > 0, the refit rounds run against T̃ before the core fit to T.
    public var balance: Double?
    public var balanceRounds: Int?
    /// lego: fraction of units in clusters of 2+ members whose coherence is below 0.5 ("catch-all" clusters).
    public var catchAllShare: Double?
    /// Randomized truncated SVD (ties/dare/magnitude_prune): its relative error against the dense result.
    public var truncationError: Double?
    /// svd: how the top-k triplets were computed (`factored`, `subspace`, `dense_gram`; docs/kernels.md).
    public var svdRoute: String?
    /// svd on the subspace route: iterations run.
    public var svdIterations: Int?
    /// true when `report: minimal` skipped the quality figures (relative error and floor are then not measured).
    public var qualityOmitted: Bool?
    /// true when relative error and floor are randomized estimates (`QualityEstimator`), with these standard errors.
    public var qualityEstimated: Bool?
    public var relativeErrorStandardError: Double?
    public var svdFloorStandardError: Double?

    public init(relativeError: Double, svdFloor: Double? = nil, clusterSizes: [Int]? = nil, iterations: Int? = nil,
                finalDistance: Double? = nil, truncationError: Double? = nil, clusterCoherence: [Double]? = nil,
                catchAllShare: Double? = nil) {
        self.relativeError = relativeError
        self.svdFloor = svdFloor
        self.clusterSizes = clusterSizes
        self.iterations = iterations
        self.finalDistance = finalDistance
        self.truncationError = truncationError
        self.clusterCoherence = clusterCoherence
        self.catchAllShare = catchAllShare
    }
}

/// A merged module: `B' A'` with all coefficients folded into the factors (output scaling is 1).
public struct ModuleResult: Sendable {
    public var name: String
    public var rank: Int
    public var outFeatures: Int
    public var inFeatures: Int
    /// Row-major [outFeatures, rank].
    public var b: [Float]
    /// Row-major [rank, inFeatures].
    public var a: [Float]
    public var stats: ModuleStats
    /// What the method already knows about its quality, so `ModuleQuality` computes only what is missing
    /// (never sent over the wire).
    public var knownQuality: KnownQuality = .unknown

    public init(name: String, rank: Int, outFeatures: Int, inFeatures: Int, b: [Float], a: [Float], stats: ModuleStats) {
        self.name = name
        self.rank = rank
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.b = b
        self.a = a
        self.stats = stats
    }
}

/// Quality facts a method knows from its own computation.
public enum KnownQuality: Sendable {
    /// Nothing: `ModuleQuality` measures error and floor.
    case unknown
    /// B'A' = T exactly (cat; lego with one cluster per unit): error 0, floor 0, nothing to compute.
    case exact
    /// svd: T's top singular values (descending) and, on an exact route, ‖T‖_F (then error = floor by
    /// Eckart–Young); on the Krylov route the norm is nil and `capture` holds what the route computed exactly
    /// (‖QᵀT‖² and its basis Q), so ‖T‖² is measured by one dense pass or estimated outside span(Q).
    case truncation(values: [Float], norm: Double?, capture: KrylovCapture? = nil)
}
