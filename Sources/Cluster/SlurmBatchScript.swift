import AdapterIO

/// What `brickyard submit slurm` asks of Slurm.
public struct SlurmRequest: Sendable, Equatable {
    public var jobName: String
    public var nodes: Int
    public var workersPerNode: Int
    public var partition: String?
    public var time: String?
    public var account: String?
    /// Further `#SBATCH` lines, given with or without the `#SBATCH ` prefix (e.g. `--mem=8G`).
    public var extraSbatch: [String]
    /// Seconds of warning before the time limit (or a preemption with a grace time): `--signal=B:USR2@N`.
    public var warningSeconds: Int

    public init(jobName: String, nodes: Int, workersPerNode: Int = 1, partition: String? = nil, time: String? = nil,
                account: String? = nil, extraSbatch: [String] = [], warningSeconds: Int = 120) {
        self.jobName = jobName
        self.nodes = nodes
        self.workersPerNode = workersPerNode
        self.partition = partition
        self.time = time
        self.account = account
        self.extraSbatch = extraSbatch
        self.warningSeconds = warningSeconds
    }

    /// One task per worker plus task 0, the coordinator.
    public var tasks: Int { nodes * workersPerNode + 1 }

    /// Checks values that end up in `#SBATCH` lines (which sbatch splits on white space, without quoting).
    public func validate() throws {
        guard nodes >= 1 else { throw ClusterError("--nodes must be at least 1") }
        guard workersPerNode >= 1 else { throw ClusterError("--workers-per-node must be at least 1") }
        guard warningSeconds >= 1 else { throw ClusterError("the requeue warning must be at least 1 s") }
        for (flag, value) in [("--job-name", jobName), ("--partition", partition), ("--time", time), ("--account", account)] {
            guard let value else { continue }
            guard !value.isEmpty, !value.contains(where: { $0.isWhitespace || $0 == "#" || $0 == "'" || $0 == "\"" }) else {
                throw ClusterError("\(flag) '\(value)' may not be empty or contain white space, quotes or '#'")
            }
        }
        if let time, !Self.isSlurmTime(time) {
            throw ClusterError("--time '\(time)' is not a Slurm time (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        }
        for line in extraSbatch {
            let option = Self.sbatchOption(line)
            guard option.hasPrefix("-"), !option.contains(where: \.isNewline) else {
                throw ClusterError("--extra-sbatch '\(line)' must be one sbatch option such as --mem=8G (optionally prefixed by #SBATCH)")
            }
        }
    }

    /// `#SBATCH --mem=8G` or `--mem=8G` → `--mem=8G`.
    static func sbatchOption(_ line: String) -> String {
        var text = line.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("#SBATCH") { text = String(text.dropFirst("#SBATCH".count)).trimmingCharacters(in: .whitespaces) }
        return text
    }

    /// Slurm's --time formats.
    static func isSlurmTime(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return false }
        func numbers(_ s: Substring) -> [Int]? {
            let fields = s.split(separator: ":", omittingEmptySubsequences: false)
            let values = fields.compactMap { $0.allSatisfy(\.isNumber) && !$0.isEmpty ? Int($0) : nil }
            return values.count == fields.count ? values : nil
        }
        if parts.count == 2 {
            guard let days = numbers(parts[0]), days.count == 1, let rest = numbers(parts[1]) else { return false }
            return (1...3).contains(rest.count)
        }
        guard let fields = numbers(parts[0]) else { return text == "UNLIMITED" || text == "INFINITE" }
        return (1...3).contains(fields.count)
    }
}

/// The batch script of a Slurm run. One `srun` starts every task with `brickyard cluster-task RUN_DIR`
/// (symmetric launch): task 0 becomes the coordinator, the others workers that wait for the coordinator's
/// endpoint file in the run directory. `--signal=B:USR2@…` warns the batch shell before the time limit; it
/// forwards the warning to the step, the coordinator stops handing out work (finished modules are already
/// checkpointed) and exits 75, and the script requeues the job, which resumes from the run's checkpoint.
public enum SlurmBatchScript {
    public static func render(request: SlurmRequest, run: RunDirectory, record: RunRecord) -> String {
        let threads = record.launch.threadsPerWorker
        var lines = [
            "#!/bin/bash",
            "# Rendered by `brickyard submit slurm` (Brickyard \(BrickyardVersion.string)).",
            "# Job file: \(record.jobFile)",
            "# Job hash: \(record.jobHash)",
            "# Run directory: \(run.path) (status: brickyard status \(run.path))",
            "# Task 0 is the coordinator, tasks 1…\(request.tasks - 1) are workers (\(request.workersPerNode) per node).",
            "#SBATCH --job-name=\(request.jobName)",
            "#SBATCH --nodes=\(request.nodes)",
            "#SBATCH --ntasks=\(request.tasks)",
            "#SBATCH --cpus-per-task=\(threads)",
        ]
        if let partition = request.partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time = request.time { lines.append("#SBATCH --time=\(time)") }
        if let account = request.account { lines.append("#SBATCH --account=\(account)") }
        lines += [
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR2@\(request.warningSeconds)",
            "#SBATCH --open-mode=append",
            "#SBATCH --output=\(run.slurmLogPattern)",
            "#SBATCH --chdir=\(run.path)",
        ]
        lines += request.extraSbatch.map { "#SBATCH " + SlurmRequest.sbatchOption($0) }
        lines.append(body(run: run, executable: record.launch.executable, tasks: request.tasks, threads: threads,
                          curve: record.curve))
        return lines.joined(separator: "\n") + "\n"
    }

    /// What the script says and checks about encryption: with CURVE, the flags `cluster-task` passes on (from
    /// run.json) and a check that every key file is there before any task starts.
    static func curveSection(_ keys: CurveRunKeys?) -> String {
        guard let keys else {
            return """
                # CURVE: OFF (submitted with --no-curve). Coordinator and workers talk in plaintext and any process that
                # reaches the coordinator's port can join as a worker and receive adapter bytes: trusted networks only.
                echo "brickyard: WARNING: this run has no CURVE encryption or authentication (--no-curve)" >&2
                """
        }
        let files = keys.files.map(shellQuoted).joined(separator: " ")
        return """
            # CURVE encryption and authentication (keys generated by submit, passed on by cluster-task from run.json):
            #   coordinator \(keys.coordinatorArguments.joined(separator: " "))
            #   workers     \(keys.workerArguments.joined(separator: " "))
            for key in \(files); do
              [ -r "$key" ] || { echo "brickyard: CURVE key file $key is missing; resubmit the run to generate its keys" >&2; exit 1; }
            done
            """
    }

    private static func body(run: RunDirectory, executable: String, tasks: Int, threads: Int, curve: CurveRunKeys?) -> String {
        """
        set -u
        RUN=\(shellQuoted(run.path))
        BRICKYARD=\(shellQuoted(executable))
        \(curveSection(curve))
        # task/none does not pin tasks: one BLAS thread per allocated CPU, set here.
        export OPENBLAS_NUM_THREADS=\(threads)
        echo "brickyard: job ${SLURM_JOB_ID} attempt $(( ${SLURM_RESTART_COUNT:-0} + 1 )) starting on $(hostname) at $(date +%s.%N)"
        # Endpoint and exit code of a previous attempt must not mislead this one's workers.
        rm -f "$RUN/endpoint" "$RUN/coordinator.exit"

        warned=0
        step=""
        # USR2: the time limit (or preemption) is near: the coordinator stops handing out work and exits 75.
        # TERM/INT: Slurm or a user ends the job (scancel, scontrol requeue): pass it on, do not requeue here.
        trap 'warned=1; [ -n "$step" ] && kill -USR2 "$step" 2>/dev/null' USR2
        trap '[ -n "$step" ] && kill -TERM "$step" 2>/dev/null' TERM
        trap '[ -n "$step" ] && kill -INT "$step" 2>/dev/null' INT

        srun --kill-on-bad-exit=0 --ntasks=\(tasks) --cpus-per-task=\(threads) "$BRICKYARD" cluster-task "$RUN" &
        step=$!
        # `wait` returns early when a trapped signal arrives: wait until the step has really ended.
        wait "$step"; status=$?
        while kill -0 "$step" 2>/dev/null; do wait "$step"; status=$?; done
        coordinator=$(cat "$RUN/coordinator.exit" 2>/dev/null || echo none)
        echo "brickyard: step ended at $(date +%s.%N) (srun exit $status, coordinator exit $coordinator)"

        case "$coordinator" in
          0) exit 0 ;;
          75)
            if [ "$warned" = 1 ]; then
              echo "brickyard: stopped before the time limit with finished modules checkpointed; requeueing job $SLURM_JOB_ID"
              scontrol requeue "$SLURM_JOB_ID" && exit 0
              echo "brickyard: scontrol requeue failed; resubmit with: sbatch $RUN/submit.sbatch" >&2
            fi
            exit 75 ;;
          none) exit 1 ;;
          *) exit "$coordinator" ;;
        esac
        """
    }

    /// `'…'` with embedded single quotes escaped, for values written into the script body.
    public static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
