import AdapterIO
import Foundation

/// The folder one submitted run lives in (`brickyard submit … --out DIR`): what was submitted and everything
/// the run leaves behind. Shared by the submitting host and every node of the job, so it must sit on a file
/// system they all see.
///
///     run.json         what was submitted (`RunRecord`): backend, job file, job hash, scheduler job id, layout
///     submit.sbatch    the rendered Slurm batch script (Slurm)     jobset.yaml   the rendered manifests (k8s)
///     endpoint         where the coordinator listens, written atomically by the coordinator of each attempt
///     status.json      progress, kept current by the coordinator (`CoordinatorStatus`)
///     coordinator.exit the coordinator's exit code for the current attempt (Slurm step launcher)
///     checkpoint/      finished modules; a requeued or resubmitted job resumes from here
///     keys/            CURVE key pairs of the coordinator and the workers (mode 0700; see `CurveRunKeys`)
///     adapter/         the merged PEFT adapter, once done
///     slurm-JOBID.log  the job's output, appended across requeues
public struct RunDirectory: Sendable {
    public let path: String

    /// `path` is made absolute (relative to the current directory) and standardized.
    public init(_ path: String) {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path)
            : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        self.path = url.standardizedFileURL.path
    }

    public var recordPath: String { path + "/run.json" }
    public var slurmScriptPath: String { path + "/submit.sbatch" }
    public var kubernetesManifestPath: String { path + "/jobset.yaml" }
    public var endpointPath: String { path + "/endpoint" }
    public var statusPath: String { path + "/status.json" }
    public var coordinatorExitPath: String { path + "/coordinator.exit" }
    public var checkpointPath: String { path + "/checkpoint" }
    public var outputPath: String { path + "/adapter" }
    public var keysPath: String { path + "/keys" }
    /// sbatch's `--output` pattern (`%j` is the job id).
    public var slurmLogPattern: String { path + "/slurm-%j.log" }

    public func slurmLogPath(jobID: String) -> String { path + "/slurm-\(jobID).log" }

    /// Characters a run directory may not contain: it is written into `#SBATCH` lines, which sbatch splits on
    /// white space without shell quoting.
    public static func checkPathIsScriptSafe(_ path: String) throws {
        if let bad = path.first(where: { $0.isWhitespace || $0 == "'" || $0 == "\"" || $0 == "\\" || $0 == "%" || $0 == "$" || $0 == "`" }) {
            throw ClusterError("\(path): the run directory may not contain '\(bad)' (it is written into #SBATCH lines); choose another --out")
        }
    }

    public func readRecord() throws -> RunRecord? {
        guard let data = FileManager.default.contents(atPath: recordPath) else { return nil }
        do {
            return try JSONDecoder().decode(RunRecord.self, from: data)
        } catch {
            throw ClusterError("\(recordPath): not a Brickyard run record: \(error)")
        }
    }

    public func writeRecord(_ record: RunRecord) throws {
        try writeAtomically(try RunRecord.encode(record), to: recordPath)
    }

    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ClusterError("\(path): cannot create the run directory: \(error.localizedDescription)")
        }
    }

    /// temp + fsync + rename, as every file the runtime writes.
    public func writeAtomically(_ bytes: [UInt8], to file: String) throws {
        do {
            try AtomicFile.write(bytes, to: file)
        } catch {
            throw ClusterError("\(file): cannot write: \(error)")
        }
    }

    /// The endpoint the current attempt's coordinator wrote, or nil.
    public func readEndpoint() -> String? {
        guard let data = FileManager.default.contents(atPath: endpointPath) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// `run.json`: what was submitted, so that `status`, the step launcher and a resubmission agree on it.
public struct RunRecord: Codable, Sendable, Equatable {
    public enum Backend: String, Codable, Sendable { case slurm, kubernetes }

    public static let currentFormat = 1
    public var format: Int
    public var backend: Backend
    /// Absolute path of the job file (its relative adapter paths resolve against its folder).
    public var jobFile: String
    /// `JobFingerprint` of the job at submission: a checkpoint of another job is refused.
    public var jobHash: String
    public var modules: Int
    public var submittedAt: Double
    public var brickyardVersion: String
    public var launch: CoordinatorLaunch
    public var slurm: SlurmRecord?
    public var kubernetes: KubernetesRecord?
    /// The CURVE key files the coordinator and workers use; nil: submitted with `--no-curve` (plaintext).
    public var curve: CurveRunKeys?

    public init(backend: Backend, jobFile: String, jobHash: String, modules: Int, submittedAt: Double,
                launch: CoordinatorLaunch, slurm: SlurmRecord? = nil, kubernetes: KubernetesRecord? = nil,
                curve: CurveRunKeys? = nil) {
        self.format = Self.currentFormat
        self.backend = backend
        self.jobFile = jobFile
        self.jobHash = jobHash
        self.modules = modules
        self.submittedAt = submittedAt
        self.brickyardVersion = BrickyardVersion.string
        self.launch = launch
        self.slurm = slurm
        self.kubernetes = kubernetes
        self.curve = curve
    }

    public static func encode(_ record: RunRecord) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(record)) + [0x0A]
    }
}

/// How the coordinator and workers of a run are started (the same on every attempt).
public struct CoordinatorLaunch: Codable, Sendable, Equatable {
    /// The `brickyard` executable every node runs (an absolute path on a shared file system, or a name on PATH).
    public var executable: String
    public var inputMode: String
    public var heartbeatMilliseconds: Int
    public var liveness: Int
    public var maxAttempts: Int
    public var threadsPerWorker: Int
    /// Host name workers use to reach the coordinator; nil: the coordinator node's host name.
    public var advertiseHost: String?
    /// The port the coordinator binds; nil or 0: any free port (workers read it from the endpoint file).
    public var port: Int?
    /// The task budget (`--max-task-mb`) every attempt plans with. Pinned at submission: the default budget
    /// depends on the memory of the machine that plans, and a requeued attempt may land on another node; a
    /// different plan would make the checkpoint unusable.
    public var maxTaskMB: Double?
    /// The port the coordinator serves Prometheus metrics on (every interface; 0: any free port, published in
    /// status.json); nil: no metrics endpoint.
    public var metricsPort: Int?

    public init(executable: String, inputMode: String = "shared", heartbeatMilliseconds: Int = 2000, liveness: Int = 5,
                maxAttempts: Int = 3, threadsPerWorker: Int = 1, advertiseHost: String? = nil, port: Int? = nil,
                maxTaskMB: Double? = nil, metricsPort: Int? = nil) {
        self.executable = executable
        self.inputMode = inputMode
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.liveness = liveness
        self.maxAttempts = maxAttempts
        self.threadsPerWorker = threadsPerWorker
        self.advertiseHost = advertiseHost
        self.port = port
        self.maxTaskMB = maxTaskMB
        self.metricsPort = metricsPort
    }
}

public struct SlurmRecord: Codable, Sendable, Equatable {
    /// Set once sbatch accepted the script.
    public var jobID: String?
    public var nodes: Int
    public var workersPerNode: Int
    public var partition: String?
    public var time: String?
    public var account: String?
}

public struct KubernetesRecord: Codable, Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public var workers: Int
    public var applied: Bool
}

/// A submission or status problem, reported on one line.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
