import BrickyardTestSupport
import Cluster
import Coordinator
import Foundation
import Testing
import WireProtocol
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// `brickyard submit … --dry-run`: what it prints, checked by the tools that will consume it.
@Suite struct SubmitDryRunTests {
    @Test func slurmScriptHasTheRequestedLayoutAndRequeueSettings() throws {
        let scratch = try TestDirectory("slurm-dry")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let runDirectory = scratch.path + "/run"
        let result = try BrickyardExecutable.run([
            "submit", "slurm", job, "--out", runDirectory, "--nodes", "2", "--workers-per-node", "3", "--threads", "2",
            "--partition", "debug", "--time", "1-02:03:04", "--account", "lab", "--extra-sbatch", "--mem=1G",
            "--extra-sbatch", "#SBATCH --exclusive", "--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        let script = result.stdout
        for line in ["#SBATCH --nodes=2", "#SBATCH --ntasks=7", "#SBATCH --cpus-per-task=2", "#SBATCH --partition=debug",
                     "#SBATCH --time=1-02:03:04", "#SBATCH --account=lab", "#SBATCH --requeue",
                     "#SBATCH --signal=B:USR2@120", "#SBATCH --open-mode=append", "#SBATCH --mem=1G", "#SBATCH --exclusive",
                     "#SBATCH --output=\(RunDirectory(runDirectory).path)/slurm-%j.log"] {
            #expect(script.contains(line + "\n"), "missing \(line)")
        }
        #expect(script.contains("srun --kill-on-bad-exit=0 --ntasks=7 --cpus-per-task=2 \"$BRICKYARD\" cluster-task \"$RUN\""))
        #expect(script.contains("scontrol requeue \"$SLURM_JOB_ID\""))
        // CURVE by default: the flags every task gets and a check that the run's key files exist.
        let run = RunDirectory(runDirectory).path
        #expect(script.contains("#   coordinator --curve-secret \(run)/keys/coordinator/coordinator.secret --allow \(run)/keys/workers\n"))
        #expect(script.contains("#   workers     --curve-server-key \(run)/keys/coordinator/coordinator.public --curve-secret \(run)/keys/workers/worker.secret\n"))
        #expect(script.contains("for key in '\(run)/keys/coordinator/coordinator.secret' "), "\(script)")
        #expect(!script.contains("--no-curve"))
        // A dry run writes nothing (no keys either).
        #expect(!FileManager.default.fileExists(atPath: runDirectory))
    }

    @Test func noCurveIsOptInAndLoud() throws {
        let scratch = try TestDirectory("slurm-nocurve")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let result = try BrickyardExecutable.run(["submit", "slurm", job, "--out", scratch.path + "/run", "--nodes", "1",
                                                  "--no-curve", "--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("WARNING: --no-curve") && result.stderr.contains("NOT encrypted"), "\(result.stderr)")
        #expect(result.stdout.contains("# CURVE: OFF (submitted with --no-curve)"))
        #expect(!result.stdout.contains("--curve-secret"))
    }

    /// The keys submit writes for a run: the layout `keys generate` makes, secrets 0600 in a 0700 folder, the
    /// public files matching their secrets; a second call keeps them (a resubmission keeps its keys).
    @Test func runKeysAreGeneratedOnceWithPrivateModes() throws {
        let scratch = try TestDirectory("runkeys")
        defer { scratch.remove() }
        let run = RunDirectory(scratch.path + "/run")
        try run.create()
        let keys = CurveRunKeys.inRunDirectory(run)
        #expect(try keys.generateIfMissing(root: run.keysPath))
        func mode(_ path: String) -> mode_t {
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mode & 0o777 : 0o7777
        }
        #expect(mode(run.keysPath) == 0o700)
        #expect(mode(keys.coordinatorSecret) == 0o600 && mode(keys.workerSecret) == 0o600)
        let coordinator = try CurveKeyFiles.readSecret(path: keys.coordinatorSecret)
        let worker = try CurveKeyFiles.readSecret(path: keys.workerSecret)
        #expect(coordinator != worker)
        #expect(try CurveKeyFiles.readPublic(path: keys.coordinatorPublic) == coordinator.publicKey)
        #expect(try CurveKeyFiles.readAllowed(directory: keys.allowDirectory) == [worker.publicKey])
        #expect(try !keys.generateIfMissing(root: run.keysPath))
        #expect(try CurveKeyFiles.readSecret(path: keys.coordinatorSecret) == coordinator)
        // A damaged pair is replaced rather than handed to the coordinator.
        try "garbage\n".write(toFile: keys.coordinatorPublic, atomically: true, encoding: .utf8)
        #expect(try keys.generateIfMissing(root: run.keysPath))
        #expect(try CurveKeyFiles.readSecret(path: keys.coordinatorSecret) != coordinator)
        // The launcher passes them on.
        let record = RunRecord(backend: .slurm, jobFile: "/j.yaml", jobHash: "h", modules: 1, submittedAt: 0,
                               launch: CoordinatorLaunch(executable: "brickyard"), curve: keys)
        let coordinatorArguments = ClusterTask.coordinatorArguments(run: run, record: record, host: "node1")
        #expect(coordinatorArguments.suffix(4) == ["--curve-secret", keys.coordinatorSecret, "--allow", keys.allowDirectory])
        let workerArguments = ClusterTask.workerArguments(record: record, endpoint: "tcp://node1:5", workerID: "w")
        #expect(workerArguments.suffix(4) == ["--curve-server-key", keys.coordinatorPublic, "--curve-secret", keys.workerSecret])
    }

    @Test(.enabled(if: LocalSlurm.enabled, "needs a Slurm controller (scripts/start-slurm)"))
    func sbatchTestOnlyAcceptsTheScript() throws {
        try #require(LocalSlurm.reachable, "Slurm is required (BRICKYARD_REQUIRE_SLURM=1) but no controller answers")
        let scratch = try TestDirectory("slurm-testonly")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        try FileManager.default.createDirectory(atPath: scratch.path + "/run", withIntermediateDirectories: true)
        let result = try BrickyardExecutable.run(["submit", "slurm", job, "--out", scratch.path + "/run", "--nodes", "1",
                                                  "--workers-per-node", "2", "--time", "5:00", "--extra-sbatch", "--mem=100M",
                                                  "--dry-run"])
        try #require(result.status == 0, "\(result.stderr)")
        let script = scratch.path + "/submit.sbatch"
        try result.stdout.write(toFile: script, atomically: true, encoding: .utf8)
        let check = try runTool("sbatch", ["--test-only", script], environment: LocalSlurm.environment)
        #expect(check.status == 0, "sbatch --test-only refused the script: \(check.stderr)")
        #expect(check.stderr.contains("to start at"), "\(check.stderr)")
    }

    @Test(arguments: [
        (["--nodes", "0"], "--nodes"),
        (["--nodes", "1", "--workers-per-node", "0"], "--workers-per-node"),
        (["--nodes", "1", "--time", "soon"], "--time"),
        (["--nodes", "1", "--partition", "a b"], "--partition"),
        (["--nodes", "1", "--extra-sbatch", "mem=1G"], "--extra-sbatch"),
        (["--nodes", "1", "--threads", "0"], "--threads"),
    ])
    func badSlurmArgumentsAreRefusedOnOneLine(arguments: [String], names: String) throws {
        let scratch = try TestDirectory("slurm-bad")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let result = try BrickyardExecutable.run(["submit", "slurm", job, "--out", scratch.path + "/run", "--dry-run"] + arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(names), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func runDirectoryWithSpacesIsRefused() throws {
        let scratch = try TestDirectory("slurm-space")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let result = try BrickyardExecutable.run(["submit", "slurm", job, "--out", scratch.path + "/my run", "--nodes", "1", "--dry-run"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("may not contain"), "\(result.stderr)")
    }

    @Test func missingJobFileIsOneLine() throws {
        let scratch = try TestDirectory("slurm-missing")
        defer { scratch.remove() }
        let result = try BrickyardExecutable.run(["submit", "slurm", scratch.path + "/nope.yaml", "--out", scratch.path + "/run",
                                                  "--nodes", "1", "--dry-run"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("brickyard: ") && result.stderr.contains("nope.yaml"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    /// `brickyard status` on a folder that does not exist says so; on one that is no run, that it holds no run.json.
    @Test func statusOfAMissingOrForeignFolderIsOneLine() throws {
        let scratch = try TestDirectory("status-missing")
        defer { scratch.remove() }
        let missing = try BrickyardExecutable.run(["status", scratch.path + "/nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "brickyard: \(scratch.path)/nope: no such run directory (the folder given to brickyard submit --out)\n")
        let foreign = try BrickyardExecutable.run(["status", scratch.path])
        #expect(foreign.status == 1 && foreign.stderr.contains("no run.json"), "\(foreign.stderr)")
        #expect(foreign.stderr.split(separator: "\n").count == 1)
    }

    @Test(arguments: [1, 4])
    func kubernetesManifestsParseAndCarryWhatWasAsked(workers: Int) throws {
        let scratch = try TestDirectory("k8s")
        defer { scratch.remove() }
        let job = scratch.path + "/merge-job.yaml"
        try "method: cat\nadapters:\n  - path: /data/adapters/a\n  - path: /data/adapters/b\n".write(toFile: job, atomically: true, encoding: .utf8)
        let result = try BrickyardExecutable.run([
            "submit", "k8s", job, "--name", "lora-soup", "--namespace", "ml", "--workers", "\(workers)", "--threads", "2",
            "--image", "registry.example/brickyard:1", "--pvc", "pool", "--pvc-size", "50Gi", "--keys-secret", "soup-keys",
            "--heartbeat-ms", "3000", "--dry-run"])
        try #require(result.status == 0, "\(result.stderr)")
        let documents = try Array(Yams.load_all(yaml: result.stdout)).compactMap { $0 as? [String: Any] }
        let kinds = documents.compactMap { $0["kind"] as? String }
        #expect(kinds == ["ConfigMap", "PersistentVolumeClaim", "Service", "JobSet"])
        func named(_ kind: String) throws -> [String: Any] { try #require(documents.first { $0["kind"] as? String == kind }) }
        func meta(_ document: [String: Any]) -> [String: Any] { document["metadata"] as? [String: Any] ?? [:] }
        for document in documents { #expect(meta(document)["namespace"] as? String == "ml") }

        let configMap = try named("ConfigMap")
        #expect(meta(configMap)["name"] as? String == "lora-soup-job")
        #expect((configMap["data"] as? [String: String])?["job.yaml"] == (try String(contentsOfFile: job, encoding: .utf8)))

        let claim = try named("PersistentVolumeClaim")
        #expect(meta(claim)["name"] as? String == "pool")

        let service = try named("Service")
        #expect(meta(service)["name"] as? String == "lora-soup-coordinator")
        let serviceSpec = try #require(service["spec"] as? [String: Any])
        #expect(serviceSpec["clusterIP"] as? String == "None")
        #expect((serviceSpec["selector"] as? [String: String])?["jobset.sigs.k8s.io/replicatedjob-name"] == "coordinator")

        let jobSet = try named("JobSet")
        #expect(jobSet["apiVersion"] as? String == "jobset.x-k8s.io/v1alpha2")
        #expect(meta(jobSet)["name"] as? String == "lora-soup")
        let replicated = try #require((jobSet["spec"] as? [String: Any])?["replicatedJobs"] as? [[String: Any]])
        #expect(replicated.map { $0["name"] as? String } == ["coordinator", "workers"])
        #expect(replicated.map { $0["replicas"] as? Int } == [1, workers])

        for (job, expectedVolumes) in zip(replicated, [["data", "job", "keys"], ["data", "keys"]]) {
            let podSpec = try #require(((((job["template"] as? [String: Any])?["spec"] as? [String: Any])?["template"]
                as? [String: Any])?["spec"]) as? [String: Any])
            let volumes = try #require(podSpec["volumes"] as? [[String: Any]])
            #expect(volumes.compactMap { $0["name"] as? String } == expectedVolumes)
            let data = try #require(volumes.first { $0["name"] as? String == "data" })
            #expect((data["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String == "pool")
            let keys = try #require(volumes.first { $0["name"] as? String == "keys" })
            let secret = try #require(keys["secret"] as? [String: Any])
            #expect(secret["secretName"] as? String == "soup-keys")
            #expect(secret["defaultMode"] as? Int == 0o400)
            // Each pod gets only the key files it needs.
            let items = (secret["items"] as? [[String: String]] ?? []).map { "\($0["key"] ?? "")>\($0["path"] ?? "")" }
            #expect(items == (job["name"] as? String == "workers"
                              ? ["coordinator.public>coordinator.public", "worker.secret>worker.secret"]
                              : ["coordinator.secret>coordinator.secret", "worker.public>allow/worker.public"]))
            let container = try #require((podSpec["containers"] as? [[String: Any]])?.first)
            #expect(container["image"] as? String == "registry.example/brickyard:1")
            // Every argument must be a YAML string (Kubernetes rejects numbers in args).
            let args = try #require(container["args"] as? [Any])
            #expect(args.allSatisfy { $0 is String }, "\(args)")
            let mounts = (container["volumeMounts"] as? [[String: Any]] ?? []).compactMap { $0["mountPath"] as? String }
            #expect(mounts.contains("/data") && mounts.contains("/etc/brickyard/keys"))
            if job["name"] as? String == "workers" {
                #expect(args as? [String] == ["worker", "--connect", "tcp://lora-soup-coordinator:5555", "--threads", "2",
                                              "--heartbeat-ms", "3000", "--liveness", "5",
                                              "--curve-server-key", "/etc/brickyard/keys/coordinator.public",
                                              "--curve-secret", "/etc/brickyard/keys/worker.secret"])
            } else {
                let strings = try #require(args as? [String])
                #expect(strings.prefix(2) == ["coordinator", "/etc/brickyard/job/job.yaml"])
                #expect(strings.contains("/data/brickyard/lora-soup/checkpoint"))
                #expect(strings.contains("/data/brickyard/lora-soup/adapter"))
                #expect(strings.suffix(4) == ["--curve-secret", "/etc/brickyard/keys/coordinator.secret", "--allow", "/etc/brickyard/keys/allow"])
            }
        }
    }

    /// Without --keys-secret, submit renders a Secret NAME-keys with fresh key pairs (usable key files: each
    /// public key belongs to its secret); --no-curve renders no keys at all and says so.
    @Test func kubernetesRendersASecretWithFreshKeysUnlessCurveIsOff() throws {
        let scratch = try TestDirectory("k8s-keys")
        defer { scratch.remove() }
        let job = scratch.path + "/soup.yaml"
        try "method: cat\nadapters:\n  - path: /data/adapters/a\n".write(toFile: job, atomically: true, encoding: .utf8)
        func render(_ extra: [String]) throws -> (documents: [[String: Any]], stderr: String) {
            let result = try BrickyardExecutable.run(["submit", "k8s", job, "--name", "soup", "--workers", "2", "--dry-run"] + extra)
            try #require(result.status == 0, "\(result.stderr)")
            return (try Array(Yams.load_all(yaml: result.stdout)).compactMap { $0 as? [String: Any] }, result.stderr)
        }
        func podSpecs(_ documents: [[String: Any]]) throws -> [[String: Any]] {
            let jobSet = try #require(documents.first { $0["kind"] as? String == "JobSet" })
            let replicated = try #require((jobSet["spec"] as? [String: Any])?["replicatedJobs"] as? [[String: Any]])
            return replicated.compactMap { ((((($0["template"] as? [String: Any])?["spec"] as? [String: Any])?["template"]
                as? [String: Any])?["spec"]) as? [String: Any]) }
        }

        let (documents, _) = try render([])
        #expect(documents.compactMap { $0["kind"] as? String } == ["ConfigMap", "Secret", "Service", "JobSet"])
        let secret = try #require(documents.first { $0["kind"] as? String == "Secret" })
        #expect((secret["metadata"] as? [String: Any])?["name"] as? String == "soup-keys")
        let data = try #require(secret["data"] as? [String: String])
        #expect(Set(data.keys) == ["coordinator.secret", "coordinator.public", "worker.secret", "worker.public"])
        func key(_ name: String) throws -> String {
            let decoded = try #require(data[name].flatMap { Data(base64Encoded: $0) })
            return String(decoding: decoded, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let coordinator = try CurveKeyPair(secretKey: try key("coordinator.secret"))
        let worker = try CurveKeyPair(secretKey: try key("worker.secret"))
        let coordinatorPublic = try key("coordinator.public"), workerPublic = try key("worker.public")
        #expect(coordinator.publicKey == coordinatorPublic && worker.publicKey == workerPublic)
        #expect(coordinator != worker)
        for pod in try podSpecs(documents) {
            let volumes = pod["volumes"] as? [[String: Any]] ?? []
            let keys = volumes.first { $0["name"] as? String == "keys" }
            #expect((keys?["secret"] as? [String: Any])?["secretName"] as? String == "soup-keys")
        }
        // A second rendering has other keys: nothing is reused between submissions.
        let again = try render([]).documents.first { $0["kind"] as? String == "Secret" }
        #expect((again?["data"] as? [String: String])?["worker.secret"] != data["worker.secret"])

        let (plain, stderr) = try render(["--no-curve"])
        #expect(plain.compactMap { $0["kind"] as? String } == ["ConfigMap", "Service", "JobSet"])
        #expect(stderr.contains("WARNING: --no-curve"), "\(stderr)")
        for pod in try podSpecs(plain) {
            #expect((pod["volumes"] as? [[String: Any]] ?? []).allSatisfy { $0["name"] as? String != "keys" })
            let args = ((pod["containers"] as? [[String: Any]])?.first?["args"] as? [String]) ?? []
            #expect(!args.contains { $0.hasPrefix("--curve") || $0 == "--allow" }, "\(args)")
        }
        let conflict = try BrickyardExecutable.run(["submit", "k8s", job, "--workers", "1", "--no-curve", "--keys-secret", "k", "--dry-run"])
        #expect(conflict.status == 64 && conflict.stderr.contains("--no-curve"), "\(conflict.stderr)")
    }

    @Test func kubernetesRefusesNamesThatAreNotDNSLabels() throws {
        let scratch = try TestDirectory("k8s-bad")
        defer { scratch.remove() }
        let job = try scratch.writeJob()
        let result = try BrickyardExecutable.run(["submit", "k8s", job, "--name", "Bad_Name", "--workers", "2", "--dry-run"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("DNS-1123"), "\(result.stderr)")
    }

    @Test(arguments: [("tcp://0.0.0.0:4012", "node7", "tcp://node7:4012"), ("tcp://*:99", "10.0.0.2", "tcp://10.0.0.2:99"),
                      ("tcp://0.0.0.0:5", "fe80::1", "tcp://[fe80::1]:5"), ("ipc:///tmp/x.sock", "node7", "ipc:///tmp/x.sock")])
    func advertisedEndpointReplacesTheHost(bound: String, host: String, expected: String) {
        #expect(AdvertisedEndpoint.replacingHost(of: bound, with: host) == expected)
    }

    @Test(arguments: [("0.0.0.0:9100", "node7", "http://node7:9100/metrics"), ("[::]:81", "fe80::1", "http://[fe80::1]:81/metrics"),
                      ("127.0.0.1:9100", "node7", "http://127.0.0.1:9100/metrics"), ("0.0.0.0:5", nil, "http://0.0.0.0:5/metrics")])
    func metricsURLAdvertisesTheHostOfAWildcardBind(bound: String, host: String?, expected: String) {
        #expect(AdvertisedEndpoint.metricsURL(bound: bound, advertiseHost: host) == expected)
    }

    @Test(arguments: ["30", "10:00", "1:00:00", "2-12", "2-12:30", "2-12:30:00", "UNLIMITED"])
    func slurmTimeFormatsAreAccepted(time: String) throws {
        try SlurmRequest(jobName: "x", nodes: 1, time: time).validate()
    }
}
