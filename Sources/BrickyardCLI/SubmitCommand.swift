import ArgumentParser
import Cluster
import Coordinator
import Foundation

/// `brickyard submit slurm|k8s`: hand a merge job to a cluster scheduler.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a merge job to Slurm or Kubernetes (coordinator and workers as one job).",
        subcommands: [SubmitSlurmCommand.self, SubmitKubernetesCommand.self])
}

/// Coordinator settings every backend passes on.
struct ClusterLaunchOptions: ParsableArguments {
    @Option(name: .long, help: "BLAS threads per worker (Slurm: --cpus-per-task).")
    var threads = 1

    @Option(name: .customLong("input-mode"), help: "shared: workers read the inputs from a shared file system; inline: the coordinator streams the bytes.")
    var inputMode: InputModeArgument = .shared

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in milliseconds (clusters: a few seconds).")
    var heartbeatMilliseconds = 2000

    @Option(name: .long, help: "Heartbeat intervals a worker may miss before it is declared dead.")
    var liveness = 5

    @Option(name: .customLong("max-attempts"), help: "Failures or lost workers a module may suffer before the job fails.")
    var maxAttempts = 3

    @Option(name: .customLong("max-task-mb"), help: "Task budget in MB for splitting large lego modules (Slurm default: the job's max_task_mb, else a quarter of this machine's memory, pinned for every attempt).")
    var maxTaskMB: Double?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        guard liveness >= 1, maxAttempts >= 1 else { throw ValidationError("--liveness and --max-attempts must be at least 1") }
        if let maxTaskMB, !(maxTaskMB > 0 && maxTaskMB.isFinite) { throw ValidationError("--max-task-mb must be a positive number") }
    }

    func launch(executable: String, advertiseHost: String? = nil, port: Int? = nil, maxTaskMB: Double? = nil) -> CoordinatorLaunch {
        CoordinatorLaunch(executable: executable, inputMode: inputMode.rawValue, heartbeatMilliseconds: heartbeatMilliseconds,
                          liveness: liveness, maxAttempts: maxAttempts, threadsPerWorker: threads,
                          advertiseHost: advertiseHost, port: port, maxTaskMB: maxTaskMB ?? self.maxTaskMB)
    }
}

/// `--no-curve`, shared by both backends: CURVE is on unless turned off, and turning it off is said loudly.
struct CurveSubmitOptions: ParsableArguments {
    @Flag(name: .customLong("no-curve"),
          help: "Do not generate CURVE keys: coordinator and workers talk in plaintext (trusted networks only).")
    var noCurve = false

    /// The warning `submit` prints (stderr) for a plaintext run; the coordinator repeats it in its log.
    static let plaintextWarning = "brickyard: WARNING: --no-curve: this run is NOT encrypted or authenticated; any process that can reach the coordinator's port can join as a worker and receive adapter bytes"

    func warnIfOff() {
        if noCurve { FileHandle.standardError.write(Data((Self.plaintextWarning + "\n").utf8)) }
    }
}

/// `brickyard submit slurm JOB.yaml --out RUN_DIR --nodes N …`
struct SubmitSlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Render a batch script for the job and submit it with sbatch.",
        discussion: """
            RUN_DIR (--out) must be on a file system every node sees: it receives the batch script, run.json \
            (job id, job hash), the coordinator's endpoint and status file, the checkpoint, the job's log and, at \
            the end, the merged adapter in RUN_DIR/adapter. CURVE is on by default: submit writes a coordinator and a \
            worker key pair into RUN_DIR/keys (mode 0700, secrets 0600) and every task uses them; --no-curve turns \
            that off for trusted networks. One srun starts N × W + 1 tasks: task 0 is the \
            coordinator, the others are workers. The job asks for --requeue and a USR2 warning 120 s before its \
            time limit: the coordinator then stops, keeps what is checkpointed and the job requeues itself; a \
            requeued or resubmitted job resumes. Watch it with `brickyard status RUN_DIR`.
            """)

    @Argument(help: "The YAML job file.")
    var job: String

    @Option(name: .long, help: "Run directory (created; shared by all nodes).")
    var out: String

    @Option(name: .long, help: "Nodes to allocate.")
    var nodes: Int

    @Option(name: .customLong("workers-per-node"), help: "Worker tasks per node.")
    var workersPerNode = 1

    @Option(name: .long, help: "Slurm partition.")
    var partition: String?

    @Option(name: .long, help: "Time limit (Slurm format, e.g. 2:00:00).")
    var time: String?

    @Option(name: .long, help: "Slurm account to charge.")
    var account: String?

    @Option(name: .customLong("extra-sbatch"), parsing: .unconditionalSingleValue,
            help: "One more sbatch option for the script, e.g. --extra-sbatch --mem=8G (repeatable).")
    var extraSbatch: [String] = []

    @Option(name: .customLong("job-name"), help: "Slurm job name (default: brickyard-JOBFILE).")
    var jobName: String?

    @Option(name: .customLong("advertise-host"), help: "Name workers use to reach the coordinator's node (default: its host name).")
    var advertiseHost: String?

    @Option(name: .long, help: "Port the coordinator binds (default: any free port, published in RUN_DIR/endpoint).")
    var port: Int?

    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics from the coordinator on this port (0: any free port; the URL is in RUN_DIR/status.json and `brickyard status`).")
    var metricsPort: Int?

    @Option(name: .customLong("brickyard"), help: "The brickyard executable on the nodes (default: this one).")
    var executable: String?

    @Option(name: .customLong("warning-seconds"), help: .hidden)
    var warningSeconds = 120

    @OptionGroup var launch: ClusterLaunchOptions

    @OptionGroup var security: CurveSubmitOptions

    @Flag(name: .long, help: "Merge again even if RUN_DIR already holds a finished output.")
    var force = false

    @Flag(name: .customLong("dry-run"), help: "Print the batch script; submit nothing and write nothing.")
    var dryRun = false

    var request: SlurmRequest {
        let stem = URL(fileURLWithPath: job).deletingPathExtension().lastPathComponent
        let safe = String(stem.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        return SlurmRequest(jobName: jobName ?? "brickyard-\(safe)", nodes: nodes, workersPerNode: workersPerNode,
                            partition: partition, time: time, account: account, extraSbatch: extraSbatch,
                            warningSeconds: warningSeconds)
    }

    func validate() throws {
        do {
            try request.validate()
            try RunDirectory.checkPathIsScriptSafe(RunDirectory(out).path)
        } catch {
            throw ValidationError("\(error)")
        }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0…65535") }
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0…65535") }
    }

    func run() throws {
        let result = try CommandFailure.reporting { () throws -> (script: String, jobID: String?, record: RunRecord) in
            let budget = try Submission.pinnedTaskBudget(jobFile: job, requested: launch.maxTaskMB)
            let planned = try Submission.plan(jobFile: job, maxTaskMB: budget)
            let executable = executable ?? LocalWorkerPool.currentExecutable()
            var coordinator = launch.launch(executable: executable, advertiseHost: advertiseHost, port: port, maxTaskMB: budget)
            coordinator.metricsPort = metricsPort
            return try Submission.submitSlurm(job: planned, run: RunDirectory(out), request: request, launch: coordinator,
                                              curve: !security.noCurve, force: force, dryRun: dryRun)
        }
        security.warnIfOff()
        if dryRun {
            print(result.script, terminator: "")
            return
        }
        let run = RunDirectory(out)
        print("submitted Slurm job \(result.jobID ?? "?"): \(result.record.modules) modules, \(request.tasks - 1) workers on \(nodes) node(s)")
        print("run directory \(run.path) (script \(run.slurmScriptPath))")
        if let keys = result.record.curve {
            print("CURVE on: coordinator key \(keys.coordinatorSecret), worker key \(keys.workerSecret) (mode 0600)")
        }
        print("follow it with: brickyard status \(run.path)")
    }
}

/// `brickyard submit k8s JOB.yaml --workers N --pvc CLAIM …`
struct SubmitKubernetesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s",
        abstract: "Render a JobSet (coordinator + N workers) for the job and apply it with kubectl.",
        discussion: """
            Renders a ConfigMap with the job file, a headless Service for the coordinator, a JobSet with \
            replicated jobs `coordinator` (1) and `workers` (N), and optionally the PersistentVolumeClaim. The \
            claim is mounted at --mount-path in every pod and holds the inputs (the job file's adapter paths must \
            be absolute paths below it in shared mode), the checkpoint, status file and output under --run-path. \
            CURVE is on by default: a Secret NAME-keys with fresh coordinator and worker key pairs is rendered \
            too (or --keys-secret names an existing one with entries coordinator.secret, coordinator.public, \
            worker.secret, worker.public), and each pod mounts only the files it needs at /etc/brickyard/keys \
            (mode 0400). The rendered manifests then hold secret keys: --dry-run prints them, and RUN_DIR/jobset.yaml \
            is written with mode 0600. --no-curve renders no keys (trusted networks only). Needs the JobSet \
            controller (jobset.x-k8s.io) in the cluster.
            """)

    @Argument(help: "The YAML job file (adapter paths as the pods see them).")
    var job: String

    @Option(name: .long, help: "Local folder for the rendered manifests and run.json (not needed with --dry-run).")
    var out: String?

    @Option(name: .long, help: "JobSet name (default: brickyard-JOBFILE).")
    var name: String?

    @Option(name: .long, help: "Namespace (default: kubectl's).")
    var namespace: String?

    @Option(name: .long, help: "Worker pods.")
    var workers: Int

    @Option(name: .long, help: "Container image with brickyard as its entry point.")
    var image = "brickyard:latest"

    @Option(name: .long, help: "PersistentVolumeClaim with inputs, checkpoint and output.")
    var pvc = "brickyard-data"

    @Option(name: .customLong("pvc-size"), help: "Also render the claim, of this size (e.g. 200Gi); otherwise it must exist.")
    var pvcSize: String?

    @Option(name: .customLong("storage-class"), help: "Storage class of a rendered claim (ReadWriteMany).")
    var storageClass: String?

    @Option(name: .customLong("mount-path"), help: "Where the claim is mounted in the pods.")
    var mountPath = "/data"

    @Option(name: .customLong("run-path"), help: "Run directory inside the claim (default: MOUNT/brickyard/NAME).")
    var runPath: String?

    @Option(name: .customLong("keys-secret"), help: "Use this existing Secret's CURVE keys instead of rendering a Secret NAME-keys with new ones.")
    var keysSecret: String?

    @Option(name: .long, help: "Coordinator port.")
    var port = 5555

    @OptionGroup var launch: ClusterLaunchOptions

    @OptionGroup var security: CurveSubmitOptions

    @Flag(name: .customLong("dry-run"), help: "Print the manifests instead of applying them.")
    var dryRun = false

    var defaultName: String {
        let stem = URL(fileURLWithPath: job).deletingPathExtension().lastPathComponent.lowercased()
        let safe = String(stem.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" }.prefix(30))
            .trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return "brickyard-\(safe.isEmpty ? "job" : safe)"
    }

    /// The keys as asked: none, the named Secret, or (`generate`) fresh pairs in a rendered Secret NAME-keys.
    func keys(generate: Bool) throws -> KubernetesKeys {
        if security.noCurve { return .off }
        if let keysSecret { return .existing(secretName: keysSecret) }
        let secretName = "\(name ?? defaultName)-keys"
        return generate ? try KubernetesKeys.generate(secretName: secretName) : .existing(secretName: secretName)
    }

    func request(keys: KubernetesKeys) -> KubernetesRequest {
        KubernetesRequest(name: name ?? defaultName, namespace: namespace,
                                 workers: workers, threadsPerWorker: launch.threads, image: image, claimName: pvc,
                                 claimSize: pvcSize, storageClass: storageClass, mountPath: mountPath, runPath: runPath,
                                 keys: keys, port: port,
                                 launch: launch.launch(executable: "brickyard", port: port))
    }

    func validate() throws {
        if security.noCurve && keysSecret != nil { throw ValidationError("--no-curve and --keys-secret contradict each other") }
        do { try request(keys: try keys(generate: false)).validate() } catch { throw ValidationError("\(error)") }
        if out == nil && !dryRun { throw ValidationError("--out is required unless --dry-run is given") }
    }

    func run() throws {
        let result = try CommandFailure.reporting { () throws -> (manifest: String, record: RunRecord) in
            guard let data = FileManager.default.contents(atPath: job) else { throw ClusterError("\(job): cannot read the job file") }
            // The adapters live on the claim, not here: the job is planned (and fingerprinted) by the coordinator pod.
            let planned = Submission.PlannedJob(jobFile: RunDirectory(job).path, jobHash: "", modules: 0,
                                                text: String(decoding: data, as: UTF8.self))
            return try Submission.submitKubernetes(job: planned, run: RunDirectory(out ?? "."),
                                                   request: request(keys: try keys(generate: true)), dryRun: dryRun)
        }
        security.warnIfOff()
        if dryRun {
            print(result.manifest, terminator: "")
            return
        }
        print("applied JobSet \(name ?? defaultName) (\(workers) workers); manifests in \(RunDirectory(out ?? ".").kubernetesManifestPath)")
    }
}
