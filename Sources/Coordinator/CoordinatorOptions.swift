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
