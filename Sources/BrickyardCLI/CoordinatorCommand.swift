import ArgumentParser
import Coordinator
import Foundation
import MergeEngine

/// `brickyard coordinator JOB.yaml --bind tcp://0.0.0.0:5555 --out DIR`: serve a job to remote workers.
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a merge job to `brickyard worker` processes and write the merged adapter.",
        discussion: """
            Exit codes: 0 done; 1 the job failed (a module exhausted --max-attempts, unreadable input, ...); \
            65 --checkpoint belongs to a different job; 75 stopped by SIGTERM/SIGINT, rerun the same command \
            to resume from --checkpoint (Slurm: requeue on 75).
            """)

    @Argument(help: "The YAML job file.")
    var job: String

    @Option(name: .long, help: "ZeroMQ endpoint to listen on, e.g. tcp://0.0.0.0:5555 (tcp://127.0.0.1:* picks a port).")
    var bind: String

    @Option(name: .long, help: "Output directory (adapter_config.json, adapter_model.safetensors, merge-report.json).")
    var out: String

    @Flag(name: .long, help: "Replace the output directory if it exists and is not empty.")
    var force = false

    @Option(name: .customLong("curve-secret"), help: "CURVE: this coordinator's .secret key file (brickyard keys generate); requires --allow.")
    var curveSecret: String?

    @Option(name: .long, help: "CURVE: directory of the .public key files of the workers allowed to join.")
    var allow: String?

    // TEST-ONLY: do not start the ZAP handler (the coordinator must then refuse to start).
    @Flag(name: .customLong("no-zap-handler"), help: .hidden)
    var noZAPHandler = false

    // TEST-ONLY: stop the ZAP handler once N modules are done (the coordinator must then fail closed).
    @Option(name: .customLong("test-stop-zap-after"), help: .hidden)
    var stopZAPAfter: Int?

    @OptionGroup var runtime: MergeRuntimeOptions

    func validate() throws {
        guard (curveSecret == nil) == (allow == nil) else {
            throw ValidationError("--curve-secret and --allow go together (the coordinator's key and the workers' keys)")
        }
    }

    func run() throws {
        let logger = runtime.makeLogger(label: "brickyard.coordinator")
        let stop = StopSignal()
        // SIGUSR2 is the batch scheduler's early warning (`sbatch --signal=B:USR2@120`): stop like SIGTERM.
        stop.install(signals: [SIGTERM, SIGINT, SIGUSR2])
        do {
            let plan = try runtime.plan(jobFile: job)
            for warning in plan.warnings { logger.warning("\(warning)") }
            var options = runtime.distributedOptions(out: out, bind: bind, overwrite: force)
            if let curveSecret, let allow {
                options.coordinator.curve = CurveServerOptions(secretKeyFile: curveSecret, allowDirectory: allow,
                                                               startsZAPHandler: !noZAPHandler,
                                                               stopsZAPHandlerAfterModules: stopZAPAfter)
            }
            let outcome = try DistributedMerge.run(plan: plan, options: options, logger: logger, stop: stop)
            print("wrote \(out): \(outcome.report.modules.count) modules, \(outcome.resumed) resumed from checkpoint, \(outcome.retries) retries")
        } catch {
            throw RuntimeFailure.exit(error)
        }
    }
}
