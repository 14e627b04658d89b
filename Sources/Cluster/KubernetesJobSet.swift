import AdapterIO
import Foundation
import WireProtocol
import Yams

/// What `brickyard submit k8s` renders.
public struct KubernetesRequest: Sendable, Equatable {
    /// The JobSet's name (DNS-1123 label: lower-case letters, digits, '-'; at most 40 characters so the
    /// names derived from it stay within Kubernetes' limits).
    public var name: String
    public var namespace: String?
    public var workers: Int
    public var threadsPerWorker: Int
    public var image: String
    /// The claim holding the inputs (shared mode), the checkpoint and the output.
    public var claimName: String
    /// If set, a claim of this size is rendered too (else `claimName` must exist).
    public var claimSize: String?
    public var storageClass: String?
    /// Where the claim is mounted in every pod; the job file's adapter paths must point below it (shared mode).
    public var mountPath: String
    /// The run directory inside the claim (checkpoint/, adapter/, status.json).
    public var runPath: String
    /// CURVE keys: a Secret rendered with the manifests (the default), an existing one, or none (`--no-curve`).
    public var keys: KubernetesKeys
    public var port: Int
    public var launch: CoordinatorLaunch

    public init(name: String, namespace: String? = nil, workers: Int, threadsPerWorker: Int = 1,
                image: String = "brickyard:\(BrickyardVersion.string)", claimName: String, claimSize: String? = nil,
                storageClass: String? = nil, mountPath: String = "/data", runPath: String? = nil,
                keys: KubernetesKeys? = nil, port: Int = 5555, launch: CoordinatorLaunch) {
        self.name = name
        self.namespace = namespace
        self.workers = workers
        self.threadsPerWorker = threadsPerWorker
        self.image = image
        self.claimName = claimName
        self.claimSize = claimSize
        self.storageClass = storageClass
        self.mountPath = mountPath
        self.runPath = runPath ?? "\(mountPath)/brickyard/\(name)"
        self.keys = keys ?? .existing(secretName: "\(name)-keys")
        self.port = port
        self.launch = launch
    }

    public var coordinatorService: String { "\(name)-coordinator" }
    public var jobConfigMap: String { "\(name)-job" }
    public static let jobMountPath = "/etc/brickyard/job"
    public static let keysMountPath = "/etc/brickyard/keys"

    /// The key files as every pod sees them (each pod gets only the ones it needs: `KubernetesJobSet`).
    public var curveFiles: CurveRunKeys? {
        guard keys.secretName != nil else { return nil }
        let root = Self.keysMountPath
        return CurveRunKeys(coordinatorSecret: "\(root)/\(KubernetesKeys.coordinatorSecretKey)",
                            coordinatorPublic: "\(root)/\(KubernetesKeys.coordinatorPublicKey)",
                            allowDirectory: "\(root)/allow", workerSecret: "\(root)/\(KubernetesKeys.workerSecretKey)")
    }

    public func validate() throws {
        let secret = keys.secretName.map { [("--keys-secret", $0)] } ?? []
        for (flag, value) in [("--name", name), ("--pvc", claimName)] + secret + (namespace.map { [("--namespace", $0)] } ?? []) {
            guard Self.isDNSLabel(value, maxLength: flag == "--name" ? 40 : 63) else {
                throw ClusterError("\(flag) '\(value)' must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most \(flag == "--name" ? 40 : 63) characters")
            }
        }
        guard workers >= 1 else { throw ClusterError("--workers must be at least 1") }
        guard threadsPerWorker >= 1 else { throw ClusterError("--threads must be at least 1") }
        guard (1...65535).contains(port) else { throw ClusterError("--port must be 1…65535") }
        guard mountPath.hasPrefix("/"), runPath.hasPrefix(mountPath + "/") else {
            throw ClusterError("--run-path \(runPath) must lie inside the volume mount \(mountPath)")
        }
        guard !image.isEmpty, !image.contains(where: \.isWhitespace) else { throw ClusterError("--image '\(image)' is not an image reference") }
    }

    static func isDNSLabel(_ text: String, maxLength: Int) -> Bool {
        guard !text.isEmpty, text.count <= maxLength, let first = text.first, let last = text.last else { return false }
        let allowed = text.allSatisfy { ($0.isASCII && $0.isLowercase) || ($0.isASCII && $0.isNumber) || $0 == "-" }
        return allowed && first != "-" && last != "-"
    }
}

/// The CURVE keys of a Kubernetes run. The Secret holds four entries, `coordinator.secret`,
/// `coordinator.public`, `worker.secret` and `worker.public` (the Z85 key files `brickyard keys generate` writes);
/// the coordinator pod sees only its secret and the allowed worker key, a worker pod only its secret and the
/// coordinator's public key.
public enum KubernetesKeys: Sendable, Equatable {
    /// Render a Secret of this name holding these two pairs (the default: fresh keys per submission).
    case render(secretName: String, coordinator: CurveKeyPair, worker: CurveKeyPair)
    /// Mount an existing Secret with the four entries above (`--keys-secret`).
    case existing(secretName: String)
    /// No CURVE (`--no-curve`): plaintext, for trusted networks; the coordinator logs a loud warning.
    case off

    public static let coordinatorSecretKey = "coordinator.secret"
    public static let coordinatorPublicKey = "coordinator.public"
    public static let workerSecretKey = "worker.secret"
    public static let workerPublicKey = "worker.public"

    /// Fresh key pairs in a Secret named `secretName`.
    public static func generate(secretName: String) throws -> KubernetesKeys {
        .render(secretName: secretName, coordinator: try CurveKeyPair.generate(), worker: try CurveKeyPair.generate())
    }

    public var secretName: String? {
        switch self {
        case .render(let name, _, _), .existing(let name): return name
        case .off: return nil
        }
    }
}

/// The Kubernetes manifests of a run: the job file as a ConfigMap, optionally the PersistentVolumeClaim, a
/// headless Service for the coordinator, and a JobSet of two replicated jobs: `coordinator` (1 pod) and
/// `workers` (N pods). Emitted with Yams, so every value is quoted as YAML needs.
///
/// The coordinator's Job fails on exit codes 1 and 65 (retrying cannot help) and is restarted without counting
/// against its backoff limit on 75 (stopped by SIGTERM on eviction or preemption: it resumes from the
/// checkpoint on the claim). The JobSet succeeds when the coordinator succeeds; workers are then removed.
public enum KubernetesJobSet {
    public static func render(request: KubernetesRequest, jobFileText: String, jobFileName: String = "job.yaml") throws -> String {
        var documents: [Node] = [configMap(request, jobFileText: jobFileText, jobFileName: jobFileName)]
        if case .render(let name, let coordinator, let worker) = request.keys {
            documents.append(secret(request, name: name, coordinator: coordinator, worker: worker))
        }
        if request.claimSize != nil { documents.append(claim(request)) }
        documents.append(service(request))
        documents.append(jobSet(request, jobFileName: jobFileName))
        let body = try documents.map { try Yams.serialize(node: $0, width: -1) }.joined(separator: "---\n")
        return "# Rendered by `brickyard submit k8s` (Brickyard \(BrickyardVersion.string)); apply with kubectl apply -f.\n" + body
    }

    // MARK: documents

    private static func metadata(_ request: KubernetesRequest, name: String) -> Node {
        var pairs: [(Node, Node)] = [("name", str(name))]
        if let namespace = request.namespace { pairs.append(("namespace", str(namespace))) }
        pairs.append(("labels", map([("app.kubernetes.io/name", str("brickyard")), ("app.kubernetes.io/instance", str(request.name))])))
        return map(pairs)
    }

    private static func configMap(_ request: KubernetesRequest, jobFileText: String, jobFileName: String) -> Node {
        map([("apiVersion", "v1"), ("kind", "ConfigMap"), ("metadata", metadata(request, name: request.jobConfigMap)),
             ("data", map([(str(jobFileName), Node(jobFileText, Tag(.str), .literal))]))])
    }

    private static func secret(_ request: KubernetesRequest, name: String, coordinator: CurveKeyPair, worker: CurveKeyPair) -> Node {
        let entries = [(KubernetesKeys.coordinatorSecretKey, coordinator.secretKey), (KubernetesKeys.coordinatorPublicKey, coordinator.publicKey),
                       (KubernetesKeys.workerSecretKey, worker.secretKey), (KubernetesKeys.workerPublicKey, worker.publicKey)]
        // The files `keys generate` writes: one key and a newline, base64 as a Secret's data.
        let data = entries.map { (str($0.0), str(Data(($0.1 + "\n").utf8).base64EncodedString())) }
        return map([("apiVersion", "v1"), ("kind", "Secret"), ("metadata", metadata(request, name: name)),
                    ("type", str("Opaque")), ("data", map(data))])
    }

    private static func claim(_ request: KubernetesRequest) -> Node {
        var spec: [(Node, Node)] = [
            ("accessModes", seq([str("ReadWriteMany")])),
            ("resources", map([("requests", map([("storage", str(request.claimSize ?? ""))]))])),
        ]
        if let storageClass = request.storageClass { spec.append(("storageClassName", str(storageClass))) }
        return map([("apiVersion", "v1"), ("kind", "PersistentVolumeClaim"),
                    ("metadata", metadata(request, name: request.claimName)), ("spec", map(spec))])
    }

    private static func service(_ request: KubernetesRequest) -> Node {
        map([("apiVersion", "v1"), ("kind", "Service"), ("metadata", metadata(request, name: request.coordinatorService)),
             ("spec", map([
                ("clusterIP", str("None")),
                // Workers may resolve the name before the coordinator is ready; it is a plain TCP endpoint.
                ("publishNotReadyAddresses", Node("true", Tag(.bool))),
                ("selector", map([("jobset.sigs.k8s.io/jobset-name", str(request.name)),
                                  ("jobset.sigs.k8s.io/replicatedjob-name", str("coordinator"))])),
                ("ports", seq([map([("name", str("zmq")), ("port", int(request.port)), ("targetPort", int(request.port))])])),
             ]))])
    }

    private static func jobSet(_ request: KubernetesRequest, jobFileName: String) -> Node {
        map([("apiVersion", "jobset.x-k8s.io/v1alpha2"), ("kind", "JobSet"), ("metadata", metadata(request, name: request.name)),
             ("spec", map([
                ("network", map([("enableDNSHostnames", Node("true", Tag(.bool)))])),
                ("successPolicy", map([("operator", str("All")), ("targetReplicatedJobs", seq([str("coordinator")]))])),
                ("failurePolicy", map([("maxRestarts", int(3))])),
                ("replicatedJobs", seq([coordinatorJob(request, jobFileName: jobFileName), workerJob(request)])),
             ]))])
    }

    private static func coordinatorJob(_ request: KubernetesRequest, jobFileName: String) -> Node {
        let launch = request.launch
        let args = ["coordinator", "\(KubernetesRequest.jobMountPath)/\(jobFileName)", "--bind", "tcp://0.0.0.0:\(request.port)",
                    "--out", "\(request.runPath)/adapter", "--checkpoint", "\(request.runPath)/checkpoint",
                    "--status-file", "\(request.runPath)/status.json", "--input-mode", launch.inputMode,
                    "--heartbeat-ms", "\(launch.heartbeatMilliseconds)", "--liveness", "\(launch.liveness)",
                    "--max-attempts", "\(launch.maxAttempts)", "--log-level", "info"]
            + (launch.maxTaskMB.map { ["--max-task-mb", "\($0)"] } ?? [])
            + (request.curveFiles?.coordinatorArguments ?? [])
        let container = map([
            ("name", str("coordinator")), ("image", str(request.image)), ("args", seq(args.map(str))),
            ("ports", seq([map([("name", str("zmq")), ("containerPort", int(request.port))])])),
            ("resources", map([("requests", map([("cpu", str("1")), ("memory", str("1Gi"))]))])),
            ("volumeMounts", seq([dataMount(request, readOnly: false), jobMount()] + keysMount(request))),
        ])
        let podFailurePolicy = map([("rules", seq([
            map([("action", str("FailJob")),
                 ("onExitCodes", map([("containerName", str("coordinator")), ("operator", str("In")), ("values", seq([int(1), int(65)]))]))]),
            map([("action", str("Ignore")),
                 ("onExitCodes", map([("containerName", str("coordinator")), ("operator", str("In")), ("values", seq([int(75)]))]))]),
            map([("action", str("Ignore")), ("onPodConditions", seq([map([("type", str("DisruptionTarget"))])]))]),
        ]))])
        return replicatedJob(name: "coordinator", replicas: 1, backoffLimit: 20, podFailurePolicy: podFailurePolicy,
                             container: container,
                             volumes: [dataVolume(request), jobVolume(request)]
                                + keysVolume(request, items: [(KubernetesKeys.coordinatorSecretKey, KubernetesKeys.coordinatorSecretKey),
                                                              (KubernetesKeys.workerPublicKey, "allow/\(KubernetesKeys.workerPublicKey)")]))
    }

    private static func workerJob(_ request: KubernetesRequest) -> Node {
        let launch = request.launch
        let args = ["worker", "--connect", "tcp://\(request.coordinatorService):\(request.port)",
                    "--threads", "\(request.threadsPerWorker)", "--heartbeat-ms", "\(launch.heartbeatMilliseconds)",
                    "--liveness", "\(launch.liveness)"] + (request.curveFiles?.workerArguments ?? [])
        let threads = "\(request.threadsPerWorker)"
        let container = map([
            ("name", str("worker")), ("image", str(request.image)), ("args", seq(args.map(str))),
            ("env", seq([map([("name", str("OPENBLAS_NUM_THREADS")), ("value", str(threads))])])),
            ("resources", map([("requests", map([("cpu", str(threads)), ("memory", str("2Gi"))])),
                               ("limits", map([("cpu", str(threads))]))])),
            ("volumeMounts", seq([dataMount(request, readOnly: true)] + keysMount(request))),
        ])
        // Workers reconnect with backoff, so they may start before the coordinator and survive its restarts.
        return replicatedJob(name: "workers", replicas: request.workers, backoffLimit: 20, podFailurePolicy: nil,
                             container: container,
                             volumes: [dataVolume(request)]
                                + keysVolume(request, items: [(KubernetesKeys.coordinatorPublicKey, KubernetesKeys.coordinatorPublicKey),
                                                              (KubernetesKeys.workerSecretKey, KubernetesKeys.workerSecretKey)]))
    }

    private static func replicatedJob(name: String, replicas: Int, backoffLimit: Int, podFailurePolicy: Node?,
                                      container: Node, volumes: [Node]) -> Node {
        var jobSpec: [(Node, Node)] = [("parallelism", int(1)), ("completions", int(1)), ("backoffLimit", int(backoffLimit))]
        if let podFailurePolicy { jobSpec.append(("podFailurePolicy", podFailurePolicy)) }
        jobSpec.append(("template", map([("spec", map([
            ("restartPolicy", str("Never")),
            ("terminationGracePeriodSeconds", int(60)),
            ("containers", seq([container])),
            ("volumes", seq(volumes)),
        ]))])))
        return map([("name", str(name)), ("replicas", int(replicas)), ("template", map([("spec", map(jobSpec))]))])
    }

    private static func dataVolume(_ request: KubernetesRequest) -> Node {
        map([("name", str("data")), ("persistentVolumeClaim", map([("claimName", str(request.claimName))]))])
    }

    private static func jobVolume(_ request: KubernetesRequest) -> Node {
        map([("name", str("job")), ("configMap", map([("name", str(request.jobConfigMap))]))])
    }

    /// The Secret's entries `items` (key → path in the mount) as files of mode 0400: the key readers refuse a
    /// secret that group or others can read (so no fsGroup on these pods). None without CURVE.
    private static func keysVolume(_ request: KubernetesRequest, items: [(key: String, path: String)]) -> [Node] {
        guard let name = request.keys.secretName else { return [] }
        let projected = items.map { map([("key", str($0.key)), ("path", str($0.path))]) }
        return [map([("name", str("keys")), ("secret", map([("secretName", str(name)), ("defaultMode", int(0o400)),
                                                           ("items", seq(projected))]))])]
    }

    private static func dataMount(_ request: KubernetesRequest, readOnly: Bool) -> Node {
        var pairs: [(Node, Node)] = [("name", str("data")), ("mountPath", str(request.mountPath))]
        if readOnly { pairs.append(("readOnly", Node("true", Tag(.bool)))) }
        return map(pairs)
    }

    private static func jobMount() -> Node {
        map([("name", str("job")), ("mountPath", str(KubernetesRequest.jobMountPath)), ("readOnly", Node("true", Tag(.bool)))])
    }

    private static func keysMount(_ request: KubernetesRequest) -> [Node] {
        guard request.keys.secretName != nil else { return [] }
        return [map([("name", str("keys")), ("mountPath", str(KubernetesRequest.keysMountPath)), ("readOnly", Node("true", Tag(.bool)))])]
    }

    // MARK: node helpers

    private static func map(_ pairs: [(Node, Node)]) -> Node { Node(pairs) }
    private static func seq(_ nodes: [Node]) -> Node { Node(nodes) }
    /// A string scalar: quoted on output whenever a plain scalar would read back as a number, bool or null.
    private static func str(_ text: String) -> Node {
        // Quote exactly the strings a YAML reader would otherwise take for a number, bool or null.
        let readsBackAsString = ((try? Yams.load(yaml: text)) as? String) == text
        return Node(text, Tag(.str), readsBackAsString ? .any : .doubleQuoted)
    }
    private static func int(_ value: Int) -> Node { Node(String(value), Tag(.int)) }
}
