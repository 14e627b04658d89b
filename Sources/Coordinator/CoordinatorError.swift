/// Errors of the coordinator and its checkpoint store. `description` is one line naming the file, peer or
/// module concerned and what is wrong.
public struct CoordinatorError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Broad classes of failure, so callers (the CLI) can map them to exit codes.
    public enum Code: String, Sendable, Equatable {
        /// Filesystem trouble reading or writing the checkpoint or output.
        case io
        /// The checkpoint directory belongs to a different job.
        case checkpointMismatch
        /// A checkpoint record failed verification (checksum, shape, name).
        case corruptRecord
        /// A module's task failed `maxAttempts` times (or failed non-retryably).
        case taskFailed
        /// The transport could not be set up (bind failed, ...).
        case transport
        /// SIGTERM/SIGINT stopped the job before it finished; finished modules stay checkpointed.
        case interrupted
        /// The plan cannot be expressed as wire tasks (e.g. a module's factors in two files).
        case unsupportedPlan
        /// A result from a worker does not match the task (shape, size, checksum).
        case badResult
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
