import ArgumentParser
import Cluster
import Foundation

/// `brickyard status RUN_DIR`: progress of a submitted run and what the scheduler says about it.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a submitted run: modules done/total, workers, retries, coordinator endpoint, Slurm state.")

    @Argument(help: "The run directory given to `brickyard submit --out`.")
    var runDirectory: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let report = try CommandFailure.reporting { try RunStatusReport.gather(run: RunDirectory(runDirectory)) }
        print(json ? try report.json() : report.text())
    }
}

/// `brickyard cluster-task RUN_DIR`: one task of a run's symmetric launch (`srun` runs it on every task).
struct ClusterTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-task",
        abstract: "Run one task of a submitted run: task 0 the coordinator, the others workers.",
        shouldDisplay: false)

    @Argument(help: "The run directory.")
    var runDirectory: String

    func run() throws {
        let code = ClusterTask.run(run: RunDirectory(runDirectory), environment: ProcessInfo.processInfo.environment)
        if code != 0 { throw ExitCode(code) }
    }
}
