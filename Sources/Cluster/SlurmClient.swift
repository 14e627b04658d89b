import Foundation

/// Runs a command-line tool and captures its output (sbatch, squeue, scontrol, sacct, kubectl).
public enum ToolRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
    }

    /// Runs `tool` (looked up on PATH) with `arguments`; a tool that is not installed is a `ClusterError`.
    public static func run(_ tool: String, _ arguments: [String], workingDirectory: String? = nil) throws -> Result {
        guard let path = locate(tool) else { throw ClusterError("\(tool): not found on PATH") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ClusterError("\(path): cannot run: \(error.localizedDescription)")
        }
        // Drain both pipes before waiting, so a chatty tool never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    public static func locate(_ tool: String) -> String? {
        if tool.contains("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// What Slurm says about one job.
public struct SlurmJobState: Sendable, Equatable, Codable {
    /// PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, REQUEUED, TIMEOUT, …
    public var state: String
    /// Why a pending job waits (BeginTime, Resources, Priority, …), if Slurm says.
    public var reason: String?
    public var restarts: Int?
    public var nodes: String?
    public var elapsed: String?
    public var exitCode: String?
    /// Which tool answered: squeue, scontrol or sacct.
    public var source: String
}

/// The Slurm commands Brickyard uses.
public enum SlurmClient {
    /// `sbatch --parsable SCRIPT` → the job id.
    public static func submit(script: String, workingDirectory: String) throws -> String {
        let result = try ToolRunner.run("sbatch", ["--parsable", script], workingDirectory: workingDirectory)
        guard result.succeeded else {
            throw ClusterError("sbatch refused \(script): \(oneLine(result.stderr.isEmpty ? result.stdout : result.stderr))")
        }
        // `JOBID` or `JOBID;CLUSTER`.
        let id = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy({ $0.isNumber || $0 == "_" }) else {
            throw ClusterError("sbatch printed no job id: \(oneLine(result.stdout))")
        }
        return id
    }

    /// The job's state from squeue (live jobs) and scontrol (restarts), else sacct (jobs the controller has
    /// forgotten, when accounting is enabled); nil when no tool knows the job.
    public static func state(jobID: String) -> SlurmJobState? {
        var found: SlurmJobState?
        if let result = try? ToolRunner.run("squeue", ["-h", "-j", jobID, "-t", "all", "-o", "%T|%r|%M|%N"]), result.succeeded {
            let fields = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if fields.count == 4, !fields[0].isEmpty {
                found = SlurmJobState(state: fields[0], reason: fields[1] == "None" ? nil : fields[1], restarts: nil,
                                      nodes: fields[3].isEmpty ? nil : fields[3], elapsed: fields[2], exitCode: nil, source: "squeue")
            }
        }
        if let result = try? ToolRunner.run("scontrol", ["show", "job", "-o", jobID]), result.succeeded {
            let fields = keyValues(result.stdout)
            if var state = found ?? fields["JobState"].map({ SlurmJobState(state: $0, reason: nil, restarts: nil, nodes: nil,
                                                                             elapsed: nil, exitCode: nil, source: "scontrol") }) {
                state.restarts = fields["Restarts"].flatMap(Int.init)
                state.exitCode = fields["ExitCode"]
                if state.reason == nil, let reason = fields["Reason"], reason != "None" { state.reason = reason }
                if state.elapsed == nil { state.elapsed = fields["RunTime"] }
                found = state
            }
        }
        if found == nil, let result = try? ToolRunner.run("sacct", ["-n", "-X", "-P", "-j", jobID, "-o", "State,ExitCode,Elapsed,NodeList"]),
           result.succeeded {
            let line = result.stdout.split(separator: "\n").first.map(String.init) ?? ""
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if fields.count == 4, !fields[0].isEmpty {
                found = SlurmJobState(state: fields[0], reason: nil, restarts: nil, nodes: fields[3], elapsed: fields[2],
                                      exitCode: fields[1], source: "sacct")
            }
        }
        return found
    }

    /// Whether a state means the job may still run (so a resubmission would race it).
    public static func isActive(_ state: SlurmJobState) -> Bool {
        let word = state.state.split(separator: " ").first.map(String.init) ?? state.state
        return ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"].contains(word)
    }

    /// `Key=Value Key2=Value2 …` (scontrol -o) into a dictionary; values run to the next ` Key=`.
    static func keyValues(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<equals])
            if result[key] == nil { result[key] = String(token[token.index(after: equals)...]) }
        }
        return result
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
