import Foundation
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Where the CURVE key files of a run are, as the coordinator and the workers see them: the coordinator's
/// key pair, the directory of allowed worker public keys, and the workers' key pair (one pair shared by every
/// worker of the run). `brickyard submit` turns CURVE on by default; a run submitted with `--no-curve` has none.
///
/// Slurm: the files live in the run directory (`RUN/keys/coordinator/coordinator.secret`,
/// `RUN/keys/workers/worker.secret`, …), which every node already sees; `keys/` is mode 0700 and each secret
/// 0600, so only the submitting user (whom Slurm runs the tasks as) can read them.
/// Kubernetes: one Secret projected into each pod with only the files that pod needs (see `KubernetesJobSet`).
public struct CurveRunKeys: Codable, Sendable, Equatable {
    public var coordinatorSecret: String
    public var coordinatorPublic: String
    /// Every `*.public` in it is an allowed worker key (`coordinator --allow`).
    public var allowDirectory: String
    public var workerSecret: String

    public init(coordinatorSecret: String, coordinatorPublic: String, allowDirectory: String, workerSecret: String) {
        self.coordinatorSecret = coordinatorSecret
        self.coordinatorPublic = coordinatorPublic
        self.allowDirectory = allowDirectory
        self.workerSecret = workerSecret
    }

    public static let coordinatorName = "coordinator"
    public static let workerName = "worker"

    /// The layout `keys generate` would make for a run: RUN/keys/coordinator/coordinator.{secret,public} and
    /// RUN/keys/workers/worker.{secret,public} (the allowed-keys directory is the workers' own).
    public static func inRunDirectory(_ run: RunDirectory) -> CurveRunKeys {
        let root = run.keysPath
        return CurveRunKeys(coordinatorSecret: "\(root)/coordinator/\(coordinatorName).secret",
                            coordinatorPublic: "\(root)/coordinator/\(coordinatorName).public",
                            allowDirectory: "\(root)/workers",
                            workerSecret: "\(root)/workers/\(workerName).secret")
    }

    /// `coordinator --curve-secret … --allow …`
    public var coordinatorArguments: [String] { ["--curve-secret", coordinatorSecret, "--allow", allowDirectory] }

    /// `worker --curve-server-key … --curve-secret …`
    public var workerArguments: [String] { ["--curve-server-key", coordinatorPublic, "--curve-secret", workerSecret] }

    /// Every file a task reads, for the batch script's check before it starts anything.
    public var files: [String] { [coordinatorSecret, coordinatorPublic, allowDirectory + "/\(Self.workerName).public", workerSecret] }

    /// Writes both key pairs of a run directory layout (`inRunDirectory`), or keeps them when a previous
    /// submission of the same run left usable ones (so a resubmitted run keeps its keys). Returns whether new
    /// keys were written.
    @discardableResult
    public func generateIfMissing(root: String) throws -> Bool {
        if usable() { return false }
        do {
            try Self.makePrivateDirectory(root)
            try CurveKeyFiles.write(try CurveKeyPair.generate(), directory: (coordinatorSecret as NSString).deletingLastPathComponent,
                                    name: Self.coordinatorName, overwrite: true)
            try CurveKeyFiles.write(try CurveKeyPair.generate(), directory: allowDirectory, name: Self.workerName, overwrite: true)
        } catch {
            throw ClusterError("cannot generate the run's CURVE keys: \(error)")
        }
        return true
    }

    /// Both secrets readable (mode 0600) and each public file the secret's public key.
    func usable() -> Bool {
        guard let coordinator = try? CurveKeyFiles.readSecret(path: coordinatorSecret),
              let worker = try? CurveKeyFiles.readSecret(path: workerSecret) else { return false }
        return (try? CurveKeyFiles.readPublic(path: coordinatorPublic)) == coordinator.publicKey
            && (try? CurveKeyFiles.readPublic(path: allowDirectory + "/\(Self.workerName).public")) == worker.publicKey
    }

    /// `mkdir -m 0700` (and tightens an existing directory to 0700).
    static func makePrivateDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw ClusterError("\(path): cannot create: \(String(cString: strerror(errno)))")
        }
        guard chmod(path, 0o700) == 0 else { throw ClusterError("\(path): cannot chmod 700: \(String(cString: strerror(errno)))") }
    }
}
