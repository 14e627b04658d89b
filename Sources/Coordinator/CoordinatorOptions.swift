import WireProtocol

/// How a coordinator serves one job.
public struct CoordinatorOptions: Sendable {
    /// ZeroMQ endpoint to bind, e.g. `tcp://0.0.0.0:5555`, `tcp://127.0.0.1:*` or `ipc:///tmp/x.sock`.
    public var bind: String
    public var inputMode: Wire.InputMode
    public var scheduler: SchedulerConfiguration
    /// Upper bound of a result chunk's payload, sent to workers in every task.
    public var resultChunkBytes: Int
    /// Upper bound of an input chunk's payload (inline mode).
    public var inputChunkBytes: Int
    /// If set, the bound endpoint (with the real port) is written here once listening (tests, scripts).
    public var endpointFile: String?
    /// Show the progress line when stderr is a terminal.
    public var showProgress: Bool
    /// CURVE encryption and authentication of workers; nil: plaintext (fine on ipc:// and loopback only).
    public var curve: CurveServerOptions?
    /// `HOST:PORT` to serve Prometheus metrics on (`GET /metrics`; port 0 picks one); nil: no metrics endpoint.
    public var metricsBind: String?
    /// Host name or address workers should use: the endpoint file and status file then hold the bound endpoint
    /// with this host instead of the bound address (e.g. `tcp://node17:40123` for a bind to `tcp://0.0.0.0:*`).
    public var advertiseHost: String?
    /// If set, a `CoordinatorStatus` JSON file kept current while serving (`brickyard status` reads it).
    public var statusFile: String?

    public init(bind: String, inputMode: Wire.InputMode = .shared, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
                resultChunkBytes: Int = Chunking.defaultChunkBytes, inputChunkBytes: Int = 1 << 20, endpointFile: String? = nil,
                showProgress: Bool = true, advertiseHost: String? = nil, statusFile: String? = nil) {
        self.bind = bind
        self.inputMode = inputMode
        self.scheduler = scheduler
        self.resultChunkBytes = resultChunkBytes
        self.inputChunkBytes = inputChunkBytes
        self.endpointFile = endpointFile
        self.showProgress = showProgress
        self.advertiseHost = advertiseHost
        self.statusFile = statusFile
    }
}

/// The coordinator's CURVE setup: its own key pair and the public keys of the workers it admits.
public struct CurveServerOptions: Sendable, Equatable {
    /// A `.secret` key file (see `CurveKeyFiles`).
    public var secretKeyFile: String
    /// A directory of `.public` key files: the workers allowed to join.
    public var allowDirectory: String
    /// TEST-ONLY: false skips starting the ZAP handler, to prove the coordinator then refuses to start.
    public var startsZAPHandler: Bool
    /// TEST-ONLY: stop the ZAP handler once this many modules are done, to prove the coordinator fails closed
    /// when its handler dies mid-run.
    public var stopsZAPHandlerAfterModules: Int?

    public init(secretKeyFile: String, allowDirectory: String, startsZAPHandler: Bool = true,
                stopsZAPHandlerAfterModules: Int? = nil) {
        self.secretKeyFile = secretKeyFile
        self.allowDirectory = allowDirectory
        self.startsZAPHandler = startsZAPHandler
        self.stopsZAPHandlerAfterModules = stopsZAPHandlerAfterModules
    }

    /// ZAP domain of Brickyard's coordinator sockets.
    public static let zapDomain = "brickyard"
}

/// Whether an endpoint is reachable only from this machine (ipc://, inproc://, loopback TCP), where plaintext
/// is acceptable; anything else without CURVE gets a loud warning.
public enum EndpointScope {
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst("tcp://".count))
        // tcp://[::1]:5555, tcp://127.0.0.1:*, tcp://localhost:5555 (an interface name or 0.0.0.0 is not local).
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
