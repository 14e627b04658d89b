import Prometheus

/// The coordinator's Prometheus metrics (swift-prometheus), served by `MetricsEndpoint` on `--metrics-bind`.
/// Updated from the coordinator's loop thread; swift-prometheus' metrics are thread-safe, so the HTTP thread
/// reads them while the loop writes.
public final class CoordinatorMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let tasks: Gauge
    let tasksDone: Gauge
    let workersAlive: Gauge
    let retries: Counter
    let bytesSent: Counter
    let bytesReceived: Counter
    let taskSeconds: ValueHistogram
    let checkpointWrites: Counter

    /// Buckets of `brickyard_task_seconds`: a tiny module takes milliseconds, an 8B-model module of a thousand
    /// adapters minutes.
    public static let taskSecondsBuckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

    public init() {
        tasks = registry.makeGauge(name: "brickyard_tasks", help: "Tasks (modules) in the job.")
        tasksDone = registry.makeGauge(name: "brickyard_tasks_done", help: "Tasks finished and checkpointed, including resumed ones.")
        workersAlive = registry.makeGauge(name: "brickyard_workers_alive", help: "Workers connected and heartbeating.")
        retries = registry.makeCounter(name: "brickyard_task_retries_total", help: "Task attempts that failed or were lost and requeued.")
        bytesSent = registry.makeCounter(name: "brickyard_bytes_sent_total", help: "Protocol bytes sent to workers (envelopes, without ZeroMQ framing).")
        bytesReceived = registry.makeCounter(name: "brickyard_bytes_received_total", help: "Protocol bytes received from peers (envelopes, without ZeroMQ framing).")
        taskSeconds = registry.makeValueHistogram(name: "brickyard_task_seconds", buckets: Self.taskSecondsBuckets,
                                                  help: "Seconds a worker spent computing a task (as it reported).")
        checkpointWrites = registry.makeCounter(name: "brickyard_checkpoint_writes_total", help: "Checkpoint records written.")
    }

    /// The exposition text (what `GET /metrics` returns).
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
