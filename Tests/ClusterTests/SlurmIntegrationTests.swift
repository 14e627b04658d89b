import BrickyardTestSupport
import Cluster
import Coordinator
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `brickyard submit slurm` on the real single-node Slurm that scripts/start-slurm runs: the job is submitted,
/// interrupted mid-run (`scontrol requeue` by an operator, or the time-limit warning USR2 that makes the job
/// requeue itself), resumes from the checkpoint in the run directory, and writes the same bytes as a local
/// `brickyard merge` of the same job.
@Suite(.serialized, .enabled(if: LocalSlurm.enabled, "needs a Slurm controller (scripts/start-slurm)"))
struct SlurmIntegrationTests {
    /// Workers take this long per task (test-only fault injection, passed through sbatch's environment), so
    /// the interruption lands mid-run.
    static let slowTasks = ["BRICKYARD_TEST_WORKER_FAULTS": "slow-tasks=700"]

    enum Interruption: String, CaseIterable, Sendable {
        /// `scontrol requeue JOBID`: Slurm ends the job (SIGTERM to every task) and queues it again.
        case operatorRequeue
        /// `scancel -b -s USR2 JOBID`: what `--signal=B:USR2@120` delivers before the time limit; the batch
        /// script stops the coordinator and runs `scontrol requeue` itself.
        case timeLimitWarning
    }

    @Test(arguments: Interruption.allCases)
    func requeuedMidRunResumesAndMatchesALocalMerge(interruption: Interruption) throws {
        try #require(LocalSlurm.reachable, "Slurm is required (BRICKYARD_REQUIRE_SLURM=1) but no controller answers")
        let scratch = try TestDirectory("slurm-\(interruption.rawValue)")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let reference = scratch.path + "/local"
        let local = try BrickyardExecutable.run(["merge", job, "--out", reference, "--workers", "2", "--quiet"])
        try #require(local.status == 0, "\(local.stderr)")

        let run = RunDirectory(scratch.path + "/run")
        let submitted = try BrickyardExecutable.run(
            ["submit", "slurm", job, "--out", run.path, "--nodes", "1", "--workers-per-node", "2", "--time", "10:00",
             "--heartbeat-ms", "300", "--liveness", "5", "--metrics-port", "0"],
            environment: LocalSlurm.environment.merging(Self.slowTasks) { $1 })
        try #require(submitted.status == 0, "\(submitted.stderr)")
        let id = try #require(try run.readRecord()?.slurm?.jobID)
        defer { _ = try? runTool("scancel", [id], environment: LocalSlurm.environment) }
        #expect(submitted.stdout.contains("submitted Slurm job \(id)"))

        // Mid-run: some modules checkpointed, not all.
        var status: CoordinatorStatus?
        let midRun = eventually(timeout: .seconds(120)) {
            status = try? CoordinatorStatusWriter.read(path: run.statusPath)
            return (status?.modulesDone ?? 0) >= 2
        }
        try #require(midRun, "the job never got going: \(LocalSlurm.jobState(id)) \(scratch.read("run/slurm-\(id).log"))")
        try #require((status?.modulesDone ?? 0) < (status?.modulesTotal ?? 0), "the job finished before it could be interrupted")
        // The coordinator's metrics, scraped where status.json says they are (the node's name, a free port).
        let metricsURL = try #require(status?.metrics, "no metrics URL in status.json")
        let scrape = try #require(httpGet(metricsURL), "nothing answers at \(metricsURL)")
        #expect(scrape.status == 200)
        func sample(_ name: String) -> Double? {
            scrape.body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect((sample("brickyard_tasks_done") ?? 0) >= 2, "\(scrape.body)")
        #expect(sample("brickyard_tasks") == Double(status?.modulesTotal ?? -1), "\(scrape.body)")
        #expect((sample("brickyard_workers_alive") ?? 0) >= 1, "\(scrape.body)")

        switch interruption {
        case .operatorRequeue:
            let requeue = try runTool("scontrol", ["requeue", id], environment: LocalSlurm.environment)
            try #require(requeue.status == 0, "\(requeue.stderr)")
        case .timeLimitWarning:
            let warn = try runTool("scancel", ["-b", "-s", "USR2", id], environment: LocalSlurm.environment)
            try #require(warn.status == 0, "\(warn.stderr)")
        }
        // Slurm holds a requeued job for about two minutes (BeginTime), long enough for the old attempt to end.
        // Release it as an operator would, but only once that attempt's batch script is gone: a job started
        // while its previous batch script still runs on the node fails to launch.
        let pending = eventually(timeout: .seconds(60), interval: 0.1) { LocalSlurm.jobState(id) == "PENDING" }
        try #require(pending, "job \(id) did not go back to the queue: \(LocalSlurm.jobState(id))")
        let ended = eventually(timeout: .seconds(60), interval: 0.1) {
            scratch.read("run/slurm-\(id).log").contains("step ended") && !LocalSlurm.jobHasProcessesOnThisNode(jobID: id)
        }
        try #require(ended, "the first attempt did not end: \(scratch.read("run/slurm-\(id).log"))")
        // slurmd refuses a credential of this job dated in the same (whole) second as its revocation of the old
        // attempt's (`Job credential revoked`): release a second later.
        Thread.sleep(forTimeInterval: 1)
        _ = try runTool("scontrol", ["update", "JobId=\(id)", "StartTime=now"], environment: LocalSlurm.environment)

        let finished = eventually(timeout: .seconds(180), interval: 0.2) {
            ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"].contains(LocalSlurm.jobState(id))
        }
        let log = scratch.read("run/slurm-\(id).log")
        try #require(finished, "job \(id) still \(LocalSlurm.jobState(id)): \(log)")
        #expect(LocalSlurm.jobState(id) == "COMPLETED", "\(log)")

        // Same bytes as the local merge; the second attempt resumed what the first checkpointed.
        let merged = FileManager.default.contents(atPath: run.outputPath + "/adapter_model.safetensors")
        #expect(merged != nil && merged == FileManager.default.contents(atPath: reference + "/adapter_model.safetensors"))
        let final = try #require(try CoordinatorStatusWriter.read(path: run.statusPath))
        #expect(final.state == .done && final.modulesDone == final.modulesTotal)
        #expect(final.resumed >= 2, "the requeued attempt did not resume from the checkpoint: \(log)")
        #expect(log.contains("attempt 2 starting"), "\(log)")
        #expect(log.contains("coordinator exit 75"), "the first attempt did not stop cleanly: \(log)")
        if interruption == .timeLimitWarning {
            #expect(log.contains("stopped by SIGUSR2") && log.contains("requeueing job \(id)"), "\(log)")
        }

        // CURVE was on without being asked for: submit generated the run's keys (secrets 0600) and every attempt's
        // coordinator and workers used them.
        let keys = try #require(try run.readRecord()?.curve, "submit did not turn CURVE on")
        for secret in [keys.coordinatorSecret, keys.workerSecret] {
            var info = stat()
            #expect(stat(secret, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(secret)")
        }
        #expect(log.components(separatedBy: "CURVE on").count - 1 >= 2, "both attempts' coordinators use CURVE: \(log)")
        #expect(!log.contains("WITHOUT encryption"), "\(log)")
        #expect(!log.contains("refused"), "\(log)")

        // `brickyard status` shows the end state and Slurm's view of the job.
        let shown = try BrickyardExecutable.run(["status", run.path], environment: LocalSlurm.environment)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("slurm job \(id): COMPLETED"), "\(shown.stdout)")
        #expect(shown.stdout.contains("restarts 1"), "\(shown.stdout)")
        #expect(shown.stdout.contains("CURVE, coordinator key \(keys.coordinatorSecret)"), "\(shown.stdout)")
        #expect(shown.stdout.contains("\(final.modulesTotal)/\(final.modulesTotal) modules (\(final.resumed) resumed"), "\(shown.stdout)")

        // Resubmitting the finished run is refused (its output exists) rather than silently redone.
        let again = try BrickyardExecutable.run(["submit", "slurm", job, "--out", run.path, "--nodes", "1"],
                                                environment: LocalSlurm.environment)
        #expect(again.status == 1 && again.stderr.contains("already finished"), "\(again.stderr)")
    }

    @Test func runDirectoryOfAnotherJobIsRefused() throws {
        try #require(LocalSlurm.reachable, "Slurm is required (BRICKYARD_REQUIRE_SLURM=1) but no controller answers")
        let scratch = try TestDirectory("slurm-other")
        defer { scratch.remove() }
        let first = try scratch.writeJob(adapters: ["a_r8", "b_r4"])
        let second = try scratch.writeJob(adapters: ["a_r8", "e_bf16"])
        let run = scratch.path + "/run"
        let submitted = try BrickyardExecutable.run(["submit", "slurm", first, "--out", run, "--nodes", "1"],
                                                    environment: LocalSlurm.environment)
        try #require(submitted.status == 0, "\(submitted.stderr)")
        let id = try #require(try RunDirectory(run).readRecord()?.slurm?.jobID)
        defer { _ = try? runTool("scancel", [id], environment: LocalSlurm.environment) }
        let other = try BrickyardExecutable.run(["submit", "slurm", second, "--out", run, "--nodes", "1"],
                                                environment: LocalSlurm.environment)
        #expect(other.status == 1 && other.stderr.contains("another job"), "\(other.stderr)")
        _ = eventually(timeout: .seconds(60), interval: 0.2) { LocalSlurm.jobState(id) == "COMPLETED" }
        let log = (try? String(contentsOfFile: run + "/slurm-\(id).log", encoding: .utf8)) ?? ""
        #expect(LocalSlurm.jobState(id) == "COMPLETED", "\(log)")
    }
}
