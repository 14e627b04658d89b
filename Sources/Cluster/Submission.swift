import AdapterIO
import Coordinator
import Foundation
import MergeEngine

/// Turns a job file into a submitted run: plans the job (so a bad job fails here, not on the cluster),
/// fingerprints it, prepares the run directory and renders what the scheduler needs.
public enum Submission {
    /// The job, planned: its absolute path, hash and module count.
    public struct PlannedJob: Sendable {
        public var jobFile: String
        public var jobHash: String
        public var modules: Int
        public var text: String

        public init(jobFile: String, jobHash: String, modules: Int, text: String) {
            self.jobFile = jobFile
            self.jobHash = jobHash
            self.modules = modules
            self.text = text
        }
    }

    /// Plans the job as every attempt's coordinator will (`brickyard coordinator … --max-task-mb maxTaskMB`), so
    /// the recorded hash is the checkpoint's.
    public static func plan(jobFile: String, maxTaskMB: Double?) throws -> PlannedJob {
        let absolute = RunDirectory(jobFile).path
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw ClusterError("\(jobFile): cannot read the job file")
        }
        var plan = try Planner.plan(job: try JobSpec.load(path: absolute))
        if let maxTaskMB { TaskBudget.apply(to: &plan, megabytes: maxTaskMB) }
        return PlannedJob(jobFile: absolute, jobHash: try JobFingerprint.compute(plan: plan), modules: plan.modules.count,
                          text: String(decoding: data, as: UTF8.self))
    }

    /// The task budget to pin for a run: the one asked for, else the job's `max_task_mb`, else this machine's
    /// default (see `CoordinatorLaunch.maxTaskMB`).
    public static func pinnedTaskBudget(jobFile: String, requested: Double?) throws -> Double {
        if let requested { return requested }
        return try JobSpec.load(path: RunDirectory(jobFile).path).maxTaskMB ?? TaskBudget.defaultMegabytes
    }

    /// Checks that `run` may take this job: a new or empty folder, or the run directory of the same job whose
    /// scheduler job is no longer active (a resubmission resumes from its checkpoint). A finished output is
    /// kept unless `force`.
    public static func checkRunDirectory(_ run: RunDirectory, job: PlannedJob, force: Bool,
                                         activeSlurmJob: (String) -> SlurmJobState? = SlurmClient.state) throws {
        try RunDirectory.checkPathIsScriptSafe(run.path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw ClusterError("\(run.path): exists and is not a directory") }
        guard let previous = try run.readRecord() else {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
            guard contents.isEmpty else { throw ClusterError("\(run.path): exists, is not empty and is not a Brickyard run directory") }
            return
        }
        guard previous.jobHash == job.jobHash else {
            throw ClusterError("\(run.path): holds a run of another job (hash \(previous.jobHash.prefix(12))…, this job \(job.jobHash.prefix(12))…); choose another --out")
        }
        if let id = previous.slurm?.jobID, let state = activeSlurmJob(id), SlurmClient.isActive(state) {
            throw ClusterError("\(run.path): Slurm job \(id) of this run is still \(state.state); wait for it or scancel \(id)")
        }
        let output = (try? FileManager.default.contentsOfDirectory(atPath: run.outputPath)) ?? []
        if !output.isEmpty && !force {
            throw ClusterError("\(run.outputPath): this run already finished (use --force to merge again)")
        }
    }

    /// Writes run.json and submit.sbatch, generates the run's CURVE keys (unless `curve` is false: `--no-curve`),
    /// then (unless `dryRun`) submits the script and records the job id. Returns the script and the job id (nil
    /// on a dry run, which writes nothing: no keys either, the script names where they will be).
    public static func submitSlurm(job: PlannedJob, run: RunDirectory, request: SlurmRequest, launch: CoordinatorLaunch,
                                   curve: Bool = true, force: Bool,
                                   dryRun: Bool) throws -> (script: String, jobID: String?, record: RunRecord) {
        try request.validate()
        try RunDirectory.checkPathIsScriptSafe(run.path)
        let keys = curve ? CurveRunKeys.inRunDirectory(run) : nil
        var record = RunRecord(backend: .slurm, jobFile: job.jobFile, jobHash: job.jobHash, modules: job.modules,
                               submittedAt: Date().timeIntervalSince1970, launch: launch,
                               slurm: SlurmRecord(jobID: nil, nodes: request.nodes, workersPerNode: request.workersPerNode,
                                                  partition: request.partition, time: request.time, account: request.account),
                               curve: keys)
        let script = SlurmBatchScript.render(request: request, run: run, record: record)
        if dryRun { return (script, nil, record) }
        try checkRunDirectory(run, job: job, force: force)
        try run.create()
        if force { try? FileManager.default.removeItem(atPath: run.outputPath) }
        try run.writeAtomically(Array(script.utf8), to: run.slurmScriptPath)
        try run.writeRecord(record)
        // After run.json: a directory holding keys but no record would be refused by the next submission.
        try keys?.generateIfMissing(root: run.keysPath)
        let id = try SlurmClient.submit(script: run.slurmScriptPath, workingDirectory: run.path)
        record.slurm?.jobID = id
        try run.writeRecord(record)
        return (script, id, record)
    }

    /// Renders the manifests; unless `dryRun`, writes them (mode 0600: a rendered Secret holds key material) and
    /// run.json into `run` and applies them with kubectl.
    public static func submitKubernetes(job: PlannedJob, run: RunDirectory, request: KubernetesRequest,
                                        dryRun: Bool) throws -> (manifest: String, record: RunRecord) {
        try request.validate()
        let manifest = try KubernetesJobSet.render(request: request, jobFileText: job.text)
        var record = RunRecord(backend: .kubernetes, jobFile: job.jobFile, jobHash: job.jobHash, modules: job.modules,
                               submittedAt: Date().timeIntervalSince1970, launch: request.launch,
                               kubernetes: KubernetesRecord(name: request.name, namespace: request.namespace,
                                                            workers: request.workers, applied: false),
                               curve: request.curveFiles)
        if dryRun { return (manifest, record) }
        try run.create()
        do {
            try AtomicFile.write(Array(manifest.utf8), to: run.kubernetesManifestPath, mode: 0o600)
        } catch {
            throw ClusterError("\(run.kubernetesManifestPath): cannot write: \(error)")
        }
        try run.writeRecord(record)
        let result = try ToolRunner.run("kubectl", ["apply", "-f", run.kubernetesManifestPath])
        guard result.succeeded else {
            throw ClusterError("kubectl apply -f \(run.kubernetesManifestPath) failed: \(SlurmClient.oneLine(result.stderr))")
        }
        record.kubernetes?.applied = true
        try run.writeRecord(record)
        return (manifest, record)
    }
}
