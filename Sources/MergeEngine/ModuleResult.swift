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
    /// lego: fraction of units in clusters of 2+ members whose coherence is below 0.5 ("catch-all" clusters).
    public var catchAllShare: Double?
    /// Randomized truncated SVD (ties/dare/magnitude_prune): its relative error against the dense result.
    public var truncationError: Double?

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
