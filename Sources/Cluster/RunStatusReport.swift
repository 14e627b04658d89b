import Coordinator
import Foundation

/// What `brickyard status RUN_DIR` shows: the submission, the coordinator's own status file and what the
/// scheduler says about the job.
public struct RunStatusReport: Codable, Sendable {
    public var runDirectory: String
    public var record: RunRecord
    public var coordinator: CoordinatorStatus?
    public var endpoint: String?
    public var slurm: SlurmJobState?
    /// Set when the merged adapter exists.
    public var output: String?

    public static func gather(run: RunDirectory,
                              slurmState: (String) -> SlurmJobState? = SlurmClient.state) throws -> RunStatusReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ClusterError("\(run.path): no such run directory (the folder given to brickyard submit --out)")
        }
        guard let record = try run.readRecord() else {
            throw ClusterError("\(run.path): no run.json; not a run directory made by brickyard submit")
        }
        let coordinator = try CoordinatorStatusWriter.read(path: run.statusPath)
        let output = FileManager.default.fileExists(atPath: run.outputPath + "/adapter_model.safetensors") ? run.outputPath : nil
        return RunStatusReport(runDirectory: run.path, record: record, coordinator: coordinator,
                               endpoint: run.readEndpoint(), slurm: record.slurm?.jobID.flatMap(slurmState), output: output)
    }

    /// Aligned `label  value` lines.
    public func text(now: Double = Date().timeIntervalSince1970) -> String {
        var rows: [(String, String)] = [("run", runDirectory), ("job file", record.jobFile),
                                        ("job hash", String(record.jobHash.prefix(16)) + "…")]
        switch record.backend {
        case .slurm:
            let id = record.slurm?.jobID ?? "(not submitted)"
            var scheduler = "slurm job \(id)"
            if let slurm {
                scheduler += ": \(slurm.state)"
                if let reason = slurm.reason { scheduler += " (\(reason))" }
                if let nodes = slurm.nodes, !nodes.isEmpty, !nodes.hasPrefix("(") { scheduler += " on \(nodes)" }
                if let elapsed = slurm.elapsed { scheduler += ", elapsed \(elapsed)" }
                if let restarts = slurm.restarts { scheduler += ", restarts \(restarts)" }
            } else if record.slurm?.jobID != nil {
                scheduler += ": unknown to squeue, scontrol and sacct"
            }
            rows.append(("scheduler", scheduler))
            if let slurm = record.slurm {
                rows.append(("layout", "\(slurm.nodes) node(s) × \(slurm.workersPerNode) worker(s), \(record.launch.threadsPerWorker) thread(s) each"))
            }
        case .kubernetes:
            let k8s = record.kubernetes
            rows.append(("scheduler", "kubernetes JobSet \(k8s?.name ?? "?")" + (k8s?.namespace.map { " in \($0)" } ?? "")
                         + ((k8s?.applied ?? false) ? " (applied)" : " (not applied)")))
        }
        rows.append(("coordinator", endpoint ?? "(not listening)"))
        if let metrics = coordinator?.metrics { rows.append(("metrics", metrics)) }
        rows.append(("security", record.curve.map { "CURVE, coordinator key \($0.coordinatorSecret)" }
                     ?? "none: plaintext (submitted with --no-curve)"))
        if let status = coordinator {
            var progress = "\(status.modulesDone)/\(status.modulesTotal) modules"
            if status.resumed > 0 { progress += " (\(status.resumed) resumed from the checkpoint)" }
            rows.append(("progress", progress))
            rows.append(("workers", "\(status.workers)"))
            rows.append(("retries", "\(status.retries)"))
            var state = status.state.rawValue
            let age = max(0, now - status.updatedAt)
            state += String(format: " (updated %.0f s ago by pid %d on %@)", age, status.pid, status.host)
            rows.append(("state", state))
            if let message = status.message { rows.append(("message", message)) }
        } else if record.backend == .kubernetes {
            rows.append(("progress", "kept in status.json of the run path on the claim (kubectl logs the coordinator pod)"))
        } else {
            rows.append(("progress", "0/\(record.modules) modules (the coordinator has not started)"))
        }
        rows.append(("output", output ?? "(not written yet)"))
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
