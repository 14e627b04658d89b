/// Brickyard's version, and the revision of the bytes it writes.
public enum BrickyardVersion {
    /// The release version: `brickyard --version`, reports, output metadata, rendered cluster scripts.
    public static let string = "0.1.0"
    /// Bumped by every change that alters any method's output bytes for the same job and seed (kernel arithmetic
    /// order, a default, a new option's effect). The version string alone did not move when kernels changed bytes,
    /// so a checkpoint or a worker of an older build could mix modules of two arithmetics into one output.
    /// History: 1 = the bytes of 06077d2 (the per-cluster power stop of split rounds, legokm's and review's changes).
    public static let outputRevision = 1
    /// What a checkpoint is tied to and a worker must match: the version and the output revision.
    public static let build = "\(string)+bytes.\(outputRevision)"
}
