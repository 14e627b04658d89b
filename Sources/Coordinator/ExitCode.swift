/// Process exit codes of `brickyard coordinator` and `brickyard merge` (documented in the README and used by
/// the batch script `brickyard submit slurm` renders to decide whether to requeue).
public enum RuntimeExitCode {
    public static let success: Int32 = 0
    /// The job failed (a module exhausted its attempts, an input could not be read, ...). Rerunning will not help.
    public static let failure: Int32 = 1
    /// `--checkpoint` points at a checkpoint of a different job (EX_DATAERR).
    public static let checkpointMismatch: Int32 = 65
    /// Stopped by SIGTERM/SIGINT; finished modules are checkpointed and the same command resumes (EX_TEMPFAIL).
    public static let interrupted: Int32 = 75

    /// The exit code for an error thrown by the runtime.
    public static func code(for error: any Error) -> Int32 {
        guard let error = error as? CoordinatorError else { return failure }
        switch error.code {
        case .interrupted: return interrupted
        case .checkpointMismatch: return checkpointMismatch
        default: return failure
        }
    }
}
