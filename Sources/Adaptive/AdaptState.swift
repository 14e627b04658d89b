import AdapterIO
import Foundation

/// One optimisation step as the report shows it.
public struct StepRecord: Sendable, Codable, Equatable {
    public var step: Int
    /// AdamW: the batch's objective; gradient-free: the best objective of the step's candidates.
    public var trainLoss: Double
    public var validationLoss: Double?
    public var learningRate: Double?
    public var evaluations: Int
    public var seconds: Double
}

/// Scores of the pool and the adapters kept.
public struct SelectionOutcome: Sendable, Codable, Equatable {
    public var criterion: SelectionSpec.Criterion
    /// One per pool adapter (nil when not scored: `by: none`).
    public var scores: [Double?]
    /// Pool indices kept, ascending.
    public var selected: [Int]
}

/// The best point seen: by validation loss (AdamW) or by training objective (gradient-free).
public struct BestPoint: Sendable, Codable, Equatable {
    public var theta: [Double]
    public var value: Double
    public var step: Int
}

/// Everything a run needs to continue after a crash, written atomically after every step: the optimiser's state
/// is plain numbers, so the resumed run computes exactly what the uninterrupted one would have.
public struct AdaptState: Sendable, Codable, Equatable {
    public static let currentFormat = 1
    public var format = AdaptState.currentFormat
    public var fingerprint: String
    public var selection: SelectionOutcome?
    public var baselines: [String: DatasetScore] = [:]
    public var theta: [Double] = []
    public var adamw: AdamW?
    public var cmaes: CMAES?
    public var nelderMead: NelderMead?
    /// Steps (AdamW) or ask/tell rounds (gradient-free) done.
    public var step = 0
    public var evaluations = 0
    public var history: [StepRecord] = []
    public var best: BestPoint?
    public var trainingDone = false

    public init(fingerprint: String) { self.fingerprint = fingerprint }
}

/// The checkpoint of an adapt run: one `state.json` in a directory, replaced atomically after every step.
public final class AdaptCheckpoint: @unchecked Sendable {
    // @unchecked: used from the run's single thread.
    public let directory: String
    private var path: String { directory + "/state.json" }

    /// The directory is created by the first `save`, so a job that fails before any work leaves nothing behind.
    public init(directory: String) throws {
        self.directory = directory
    }

    /// The saved state of the same job, nil if none; a different job's state is an error.
    public func load(fingerprint: String) throws -> AdaptState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let state: AdaptState
        do {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            state = try decoder.decode(AdaptState.self, from: data)
        } catch {
            throw AdaptError("\(path): unreadable adapt checkpoint; delete \(directory) or pass another --checkpoint")
        }
        guard state.format == AdaptState.currentFormat, state.fingerprint == fingerprint else {
            throw AdaptError("\(directory): checkpoint belongs to a different adapt job; delete it or pass another --checkpoint")
        }
        return state
    }

    public func save(_ state: AdaptState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try AtomicFile.write(Array(try encoder.encode(state)), to: path)
        } catch {
            throw AdaptError("\(path): cannot write the checkpoint: \(error)")
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
