import AdapterIO
import Foundation
import Kernels
import Logging
import MergeEngine
import WireProtocol

/// What a finished serve loop reports: how many tasks came from the checkpoint and how many were retried.
public struct ServeSummary: Sendable {
    public var resumed: Int
    public var computed: Int
    public var retries: Int
    /// Tasks handed out (including retries) and the bytes of their Task and InputChunk messages.
    public var tasksSent: Int
    public var taskBytesSent: Int
    /// Result bytes accepted into the checkpoint.
    public var resultBytesReceived: Int
    /// Split modules resumed mid-k-means: the round each restarted at, by module name.
    public var resumedRounds: [String: Int] = [:]
    /// Split rounds' shared centers: payloads sent (at most one per worker connection and round, plus resends after
    /// a worker reported one missing), their bytes, and the block tasks that referred to one instead of carrying it.
    public var roundPayloadsSent = 0
    public var roundPayloadBytesSent = 0
    public var payloadReferences = 0
}

/// The coordinator's network side for one job: binds a ROUTER socket, admits workers (hello → welcome or
/// reject), hands out tasks per the `Scheduler`, streams inline inputs, reassembles and verifies results,
/// checkpoints each finished task and keeps heartbeats flowing. Every malformed or unexpected message is logged
/// with the peer and dropped; only the job's own end (done, failed, stopped) ends the loop.
///
/// Single-threaded: the socket and all state belong to the thread that calls `run()`.
public final class CoordinatorServer {
    private let plan: MergePlan
    private let store: CheckpointStore
    private let options: CoordinatorOptions
    private let logger: Logger
    private let stop: StopSignal
    private let jobID: String
    private var scheduler: Scheduler
    private let resumed: Int
    private var socket: ZMQSocket?
    /// Result bodies being received, by peer; keyed to one (task, attempt).
    private var inbound: [PeerID: (taskID: UInt64, attempt: UInt32, chunks: ChunkReassembler)] = [:]
    private var lastSent: [PeerID: ContinuousClock.Instant] = [:]
    private var heartbeatSequence: UInt64 = 0
    private var tasksSent = 0
    private var taskBytesSent = 0
    private var resultBytesReceived = 0
    private var progress: ProgressReporter
    /// Split lego modules: their k-means rounds and block tasks.
    private var split: SplitModuleRuns
    /// Inline mode: the split-module blocks whose inputs each worker was sent (it caches them between rounds).
    private var blocksHeld: [PeerID: Set<TaskKey>] = [:]
    /// The round payload each worker connection was sent last, per (module, track): what it holds, as it keeps the
    /// newest per slot. Forgotten with the connection, and per payload when the worker reports it missing.
    private var payloadsHeld: [PeerID: [SplitModuleRuns.PayloadSlot: UInt64]] = [:]
    /// Block task index → the attempt whose dispatch carried its round payload (a miss then counts as a failure).
    private var payloadCarried: [Int: UInt32] = [:]
    private var roundPayloadsSent = 0
    private var roundPayloadBytesSent = 0
    private var payloadReferences = 0
    /// The real endpoint after binding (port resolved).
    public private(set) var boundEndpoint: String?
    /// Prometheus metrics, when `options.metricsBind` is set.
    private var metrics: CoordinatorMetrics?
    private var retriesCounted = 0
    /// Where the metrics are served (`HOST:PORT`, port resolved), once listening.
    public private(set) var metricsAddress: String?
    /// Headers of every finished task (resumed or computed), by plan index: the report is built from them.
    public private(set) var finishedHeaders: [Int: CheckpointRecordHeader]
    /// Called on every loop iteration (the merge command supervises its local workers here).
    public var onTick: (() -> Void)?
    /// Called once the socket is bound, with the real endpoint (the merge command starts its workers here).
    public var onListening: ((String) throws -> Void)?
    /// Kept current while serving when the options name a status file (set by `DistributedMerge`).
    public var status: CoordinatorStatusWriter?
    /// Called with the worker ID of a worker declared dead for missing its heartbeats (the merge command kills
    /// and replaces a hung local worker).
    public var onWorkerLost: ((String) -> Void)?

    public init(plan: MergePlan, store: CheckpointStore, options: CoordinatorOptions, jobID: String,
                logger: Logger, stop: StopSignal) throws {
        self.plan = plan
        self.store = store
        self.options = options
        self.logger = logger
        self.stop = stop
        self.jobID = jobID
        // Build every task once up front: a plan the protocol cannot express fails before anything listens.
        for (index, module) in plan.modules.enumerated() {
            do {
                _ = try Wire.Task(module: module, spec: plan.spec, jobID: jobID, taskID: UInt64(index), attempt: 1,
                                  inputMode: options.inputMode, resultChunkBytes: options.resultChunkBytes)
            } catch {
                throw CoordinatorError(.unsupportedPlan, "module \(module.name): cannot be sent to workers: \(error)")
            }
        }
        if plan.modules.contains(where: { $0.blocks != nil }) {
            for module in plan.modules where module.blocks != nil {
                do {
                    for block in module.blocks?.indices ?? 0..<0 {
                        _ = try Wire.KMeansBlockTask(module: module, blockIndex: block, spec: plan.spec, jobID: jobID, taskID: 0,
                                                     attempt: 1, request: BlockRoundRequest(kind: .firstCenter, round: 0),
                                                     inputMode: options.inputMode)
                    }
                } catch {
                    throw CoordinatorError(.unsupportedPlan, "module \(module.name): cannot be sent to workers: \(error)")
                }
            }
        }
        let keys = plan.modules.map { TaskKey(module: $0.name) }
        let finished = store.resume(tasks: plan.modules.map { (TaskKey(module: $0.name), $0.outFeatures, $0.inFeatures) })
        resumed = finished.count
        finishedHeaders = finished
        split = SplitModuleRuns(plan: plan, store: store, finished: Set(finished.keys), logger: logger)
        scheduler = Scheduler(tasks: keys, finished: Set(finished.keys), external: split.moduleIndices,
                              configuration: options.scheduler)
        progress = ProgressReporter(total: keys.count, resumed: finished.count, logger: logger,
                                    interactive: options.showProgress && isatty(STDERR_FILENO) != 0)
        if resumed > 0 { logger.info("resuming from checkpoint", metadata: ["resumed": "\(resumed)", "total": "\(keys.count)"]) }
        for module in split.moduleIndices.sorted() {
            if let outcome = split.runs[module]?.kmeans.outcome {
                // Killed after the last round's state was written but before the record: finish it now.
                try finishSplitModule(module, outcome: outcome, seconds: 0)
            } else {
                split.queueRounds(module: module, plan: plan, scheduler: &scheduler)
            }
        }
    }

    /// Serves until every task is done (returns), a task exhausts its attempts (throws `.taskFailed`) or a stop
    /// signal arrives (throws `.interrupted`). Workers get a Disconnect in every case.
    public func run() throws -> ServeSummary {
        let context = try ZMQContext()
        // Runs last, after the socket is closed and the ZAP handler stopped: waits (up to the socket's linger) until
        // the workers' Disconnects have left. Left to the context's deinit, a coordinator failing closed could exit
        // before its I/O thread sent them, and a worker would wait out its liveness instead of leaving.
        defer { context.terminate() }
        // The ZAP handler must be running and answering before the ROUTER binds (libzmq fails open without one);
        // declared before the socket so it stops after the socket is closed.
        let security = try startSecurity(context: context)
        defer { security?.handler.stop() }
        let metricsEndpoint = try startMetrics()
        defer { metricsEndpoint?.stop() }
        let socket = try ZMQSocket.router(context: context)
        self.socket = socket
        defer {
            socket.close()
            self.socket = nil
        }
        // A send blocked on a full pipe to a stuck peer must not stall the loop (and every other worker's
        // heartbeats) for longer than one interval; such a peer is treated as lost.
        try socket.setSendTimeout(milliseconds: Int32(clamping: max(100, options.scheduler.heartbeatInterval.wholeMilliseconds)))
        // No worker message is larger than one result chunk plus its envelope; ZeroMQ drops a peer that sends
        // more before the bytes are buffered, so a hostile peer cannot make the coordinator allocate gigabytes.
        try socket.setMaxMessageSize(Int64(options.resultChunkBytes) + 64 * 1024)
        if let security {
            try socket.makeCurveServer(security.keys, zapDomain: CurveServerOptions.zapDomain)
        } else if !EndpointScope.isLocal(options.bind) {
            logger.warning("WARNING: \(options.bind) is bound WITHOUT encryption or authentication: any process that can reach it can join as a worker and receive adapter bytes. Use --curve-secret and --allow (brickyard keys generate), or bind ipc:// or 127.0.0.1.")
        }
        do {
            try socket.bind(options.bind)
        } catch {
            throw CoordinatorError(.transport, "cannot bind \(options.bind): \(error)")
        }
        let bound = (try? socket.lastEndpoint()) ?? options.bind
        let endpoint = options.advertiseHost.map { AdvertisedEndpoint.replacingHost(of: bound, with: $0) } ?? bound
        boundEndpoint = endpoint
        logger.info("coordinator listening", metadata: ["endpoint": "\(endpoint)", "job.id": "\(jobID)",
                                                      "modules": "\(plan.modules.count)", "resumed": "\(resumed)"])
        if let file = options.endpointFile { try AtomicFile.write(Array((endpoint + "\n").utf8), to: file) }
        let metricsURL = metricsAddress.map { AdvertisedEndpoint.metricsURL(bound: $0, advertiseHost: options.advertiseHost) }
        status?.listening(on: endpoint, resumed: resumed, done: scheduler.doneCount, metrics: metricsURL)
        try onListening?(endpoint)

        let pollMilliseconds = max(10, min(100, options.scheduler.heartbeatInterval.wholeMilliseconds / 4))
        // Fail closed: without its handler libzmq would admit any CURVE key. Checked every turn and before each
        // message is handled: a peer whose handshake completed without the handler is never answered (the handler
        // reports stopped before its socket closes, and never restarts).
        func requireAuthentication() throws {
            guard let security, !security.handler.isRunning else { return }
            disconnectAll(reason: "coordinator stopping (authentication handler stopped)")
            logger.error("the ZAP authentication handler stopped; stopping without serving further workers", metadata: [
                "done": "\(scheduler.doneCount)", "total": "\(scheduler.moduleCount)"])
            throw CoordinatorError(.transport,
                "the ZAP authentication handler stopped; refusing to serve workers without it (\(scheduler.doneCount) of \(scheduler.moduleCount) modules done and checkpointed in \(store.directory); rerun to resume)")
        }
        while !scheduler.isFinished {
            if let security, let limit = options.curve?.stopsZAPHandlerAfterModules, scheduler.doneCount >= limit,
               security.handler.isRunning {
                logger.warning("TEST: stopping the ZAP handler", metadata: ["done": "\(scheduler.doneCount)"])
                security.handler.stop()
            }
            try requireAuthentication()
            if stop.isSet {
                // Stop handing out work; finished modules are already checkpointed. Running tasks are abandoned
                // rather than awaited, so a scheduler's grace period is never overrun.
                scheduler.drain()
                break
            }
            if try ZMQPoll.readable([socket], timeoutMilliseconds: pollMilliseconds).first == true {
                // Bounded batch so heartbeats and dispatch are not starved by a flood.
                for _ in 0..<256 {
                    guard let frames = try socket.receive(dontWait: true) else { break }
                    try requireAuthentication()
                    handle(frames: frames, now: .now)
                }
            }
            let now = ContinuousClock.now
            let workerIDs = Dictionary(uniqueKeysWithValues: scheduler.peers.map { ($0, scheduler.workerID(of: $0) ?? "\($0)") })
            for peer in scheduler.expireWorkers(now: now) {
                logger.warning("worker missed its heartbeats; task requeued", metadata: ["peer": "\(peer)"])
                forget(peer)
                if let workerID = workerIDs[peer] { onWorkerLost?(workerID) }
            }
            for assignment in scheduler.dispatch() { send(assignment) }
            sendHeartbeats(now: now)
            onTick?()
            progress.update(done: scheduler.doneCount, workers: scheduler.aliveWorkers, retries: scheduler.retries)
            updateMetrics()
            status?.progress(done: scheduler.doneCount, workers: scheduler.aliveWorkers, retries: scheduler.retries,
                             tasksSent: tasksSent)
        }
        updateMetrics()
        progress.finish()

        if let failure = scheduler.failure {
            disconnectAll(reason: "job failed")
            throw failure
        } else if !scheduler.isComplete {
            let name = stop.signalNumber.map { $0 == SIGINT ? "SIGINT" : $0 == SIGTERM ? "SIGTERM" : $0 == SIGUSR2 ? "SIGUSR2" : "signal \($0)" } ?? "stop"
            disconnectAll(reason: "coordinator stopping (\(name))")
            throw CoordinatorError(.interrupted,
                "stopped by \(name) with \(scheduler.doneCount) of \(scheduler.moduleCount) modules done and checkpointed in \(store.directory)")
        }
        disconnectAll(reason: "job done")
        logger.info("transfer totals", metadata: [
            "tasks.sent": "\(tasksSent)", "task.bytes.sent": "\(taskBytesSent)",
            "bytes.per.task": "\(tasksSent == 0 ? 0 : taskBytesSent / tasksSent)",
            "result.bytes.received": "\(resultBytesReceived)", "input.mode": "\(options.inputMode)",
            "round_payloads.sent": "\(roundPayloadsSent)", "round_payload.bytes.sent": "\(roundPayloadBytesSent)",
            "payload.references": "\(payloadReferences)"])
        return ServeSummary(resumed: resumed, computed: scheduler.moduleCount - resumed, retries: scheduler.retries,
                            tasksSent: tasksSent, taskBytesSent: taskBytesSent, resultBytesReceived: resultBytesReceived,
                            resumedRounds: split.resumedRounds(plan: plan), roundPayloadsSent: roundPayloadsSent,
                            roundPayloadBytesSent: roundPayloadBytesSent, payloadReferences: payloadReferences)
    }

    // MARK: metrics

    private func startMetrics() throws -> MetricsEndpoint? {
        guard let bind = options.metricsBind else { return nil }
        let metrics = CoordinatorMetrics()
        metrics.tasks.set(Int64(plan.modules.count))
        self.metrics = metrics
        updateMetrics()
        let endpoint = MetricsEndpoint(metrics: metrics, logger: logger)
        try endpoint.start(address: bind)
        metricsAddress = endpoint.boundAddress
        return endpoint
    }

    private func updateMetrics() {
        guard let metrics else { return }
        metrics.tasksDone.set(Int64(scheduler.doneCount))
        metrics.workersAlive.set(Int64(scheduler.aliveWorkers))
        if scheduler.retries > retriesCounted {
            metrics.retries.increment(by: Int64(scheduler.retries - retriesCounted))
            retriesCounted = scheduler.retries
        }
    }

    // MARK: security

    /// Loads the CURVE keys, starts the ZAP handler and proves it answers; nil without CURVE.
    private func startSecurity(context: ZMQContext) throws -> (keys: CurveKeyPair, handler: ZAPHandler)? {
        guard let curve = options.curve else { return nil }
        let keys: CurveKeyPair
        let allowed: Set<String>
        do {
            keys = try CurveKeyFiles.readSecret(path: curve.secretKeyFile)
            allowed = try CurveKeyFiles.readAllowed(directory: curve.allowDirectory)
        } catch {
            throw CoordinatorError(.transport, "\(error)")
        }
        let handler = ZAPHandler(context: context, allowedKeys: allowed, domain: CurveServerOptions.zapDomain, logger: logger)
        do {
            if curve.startsZAPHandler { try handler.start() }
            try ZAPHandler.probe(context: context)
        } catch {
            handler.stop()
            throw CoordinatorError(.transport, "CURVE: \(error)")
        }
        logger.info("CURVE on: workers must present an allowed key", metadata: [
            "allowed.keys": "\(allowed.count)", "allow.dir": "\(curve.allowDirectory)", "server.key": "\(keys.publicKey)"])
        return (keys, handler)
    }

    // MARK: receiving

    private func handle(frames: [[UInt8]], now: ContinuousClock.Instant) {
        guard frames.count == 2 else {
            logger.warning("dropped message with unexpected frame count", metadata: [
                "peer": "\(frames.first.map { PeerID($0) }.map { "\($0)" } ?? "?")", "frames": "\(frames.count)"])
            return
        }
        let peer = PeerID(frames[0])
        metrics?.bytesReceived.increment(by: Int64(frames[1].count))
        // Result chunks (nearly all the bytes workers send) are read in place; anything else, or anything unusual
        // about one, goes through the full decoder below.
        if let fast = WireCodec.resultChunkView(frames[1]), fast.version == Wire.protocolVersion {
            guard scheduler.heard(from: peer, now: now) else {
                logger.warning("dropped message from unknown peer", metadata: ["peer": "\(peer)", "message": "result_chunk"])
                return
            }
            receive(fast.chunk, from: peer)
            return
        }
        let decoded: (version: UInt32, message: WireMessage)
        do {
            decoded = try WireCodec.decode(frames[1])
        } catch {
            logger.warning("dropped malformed message", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return
        }
        guard decoded.version == Wire.protocolVersion else {
            logger.warning("rejected peer with wrong protocol version", metadata: [
                "peer": "\(peer)", "version": "\(decoded.version)", "expected": "\(Wire.protocolVersion)"])
            if case .hello = decoded.message {
                // Stamped with the peer's version: a worker of another version drops envelopes of ours, and would
                // otherwise keep reconnecting instead of stopping with the reason.
                sendRaw(.reject(reason: "protocol version \(decoded.version) is not supported; this coordinator speaks \(Wire.protocolVersion) (run the same brickyard build on coordinator and workers)"),
                        to: peer, protocolVersion: decoded.version)
            }
            return
        }
        if case .hello(let hello) = decoded.message {
            admit(hello, peer: peer, now: now)
            return
        }
        guard scheduler.heard(from: peer, now: now) else {
            logger.warning("dropped message from unknown peer", metadata: ["peer": "\(peer)", "message": "\(decoded.message.kindName)"])
            return
        }
        switch decoded.message {
        case .heartbeat:
            break
        case .resultChunk(let chunk):
            receive(ResultChunkView(chunk), from: peer)
        case .taskDone(let done):
            finish(done, from: peer)
        case .taskFailed(let failed):
            inbound[peer] = nil
            forgetBlock(taskID: failed.taskID, peer: peer)
            var counts = true
            if failed.missingPayload != 0 {
                // The worker lacks the round payload: it is resent with the retry. Not the task's fault unless this
                // very attempt carried the payload.
                payloadsHeld[peer] = payloadsHeld[peer]?.filter { $0.value != failed.missingPayload }
                counts = failed.taskID < UInt64(Int.max) && payloadCarried[Int(failed.taskID)] == failed.attempt
            }
            let outcome = scheduler.fail(peer: peer, taskID: failed.taskID, attempt: failed.attempt, error: failed.error,
                                         retryable: failed.retryable, countsAgainstTask: counts)
            logger.warning("worker reported task failure", metadata: [
                "peer": "\(peer)", "task.id": "\(failed.taskID)", "attempt": "\(failed.attempt)",
                "module": "\(moduleName(failed.taskID))", "error": "\(failed.error)", "outcome": "\(outcome)"])
        case .disconnect(let reason):
            logger.info("worker left", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
            scheduler.removeWorker(peer, countsAgainstTask: false)
            forget(peer)
        case .hello, .welcome, .reject, .task, .inputChunk, .kmeansBlockTask, .roundPayload, .evalRequest, .evalResult,
             .evalFailed:
            logger.warning("dropped message a merge worker must not send", metadata: ["peer": "\(peer)", "message": "\(decoded.message.kindName)"])
        }
    }

    private func admit(_ hello: Wire.Hello, peer: PeerID, now: ContinuousClock.Instant) {
        guard hello.role == .mergeWorker else {
            logger.warning("rejected peer of another role", metadata: ["peer": "\(peer)", "role": "\(hello.role)"])
            sendRaw(.reject(reason: "this coordinator runs a merge and serves merge workers (role merge worker); a peer of role \(hello.role) cannot join"), to: peer)
            return
        }
        // The build, not only the version: a worker whose kernels write other bytes must not compute modules of
        // this job (the output would mix two arithmetics).
        guard hello.version == BrickyardVersion.build else {
            logger.warning("rejected worker with a different tool version", metadata: [
                "peer": "\(peer)", "worker.version": "\(hello.version)", "expected": "\(BrickyardVersion.build)"])
            sendRaw(.reject(reason: "worker version \(hello.version) differs from coordinator version \(BrickyardVersion.build)"), to: peer)
            return
        }
        if scheduler.isKnown(peer) {
            logger.warning("worker said hello again; its running task is requeued", metadata: ["peer": "\(peer)"])
            forget(peer)
        }
        scheduler.join(peer: peer, workerID: hello.workerID, now: now)
        logger.info("worker joined", metadata: [
            "peer": "\(peer)", "worker.id": "\(hello.workerID)", "host": "\(hello.hostname)", "pid": "\(hello.pid)",
            "blas.threads": "\(hello.blasThreads)"])
        send(.welcome(Wire.Welcome(jobID: jobID,
                                   heartbeatIntervalMilliseconds: UInt32(clamping: options.scheduler.heartbeatInterval.wholeMilliseconds),
                                   heartbeatLiveness: UInt32(clamping: options.scheduler.liveness))), to: peer)
    }

    private func receive(_ chunk: ResultChunkView, from peer: PeerID) {
        guard case .accepted(let index) = scheduler.holds(peer: peer, taskID: chunk.taskID, attempt: chunk.attempt) else {
            logger.warning("dropped result chunk for a task the peer does not hold", metadata: [
                "peer": "\(peer)", "task.id": "\(chunk.taskID)", "attempt": "\(chunk.attempt)"])
            return
        }
        if let current = inbound[peer], current.taskID != chunk.taskID || current.attempt != chunk.attempt { inbound[peer] = nil }
        let limit = split.maxResultBytes(taskIndex: index, plan: plan) ?? maxResultBytes(plan.modules[index])
        var entry = inbound[peer] ?? (chunk.taskID, chunk.attempt, ChunkReassembler(maxTotalBytes: limit))
        do {
            _ = try entry.chunks.add(chunk)
            inbound[peer] = entry
        } catch {
            inbound[peer] = nil
            rejectResult(peer: peer, taskID: chunk.taskID, attempt: chunk.attempt, reason: "bad result chunk: \(error)")
        }
    }

    private func finish(_ done: Wire.TaskDone, from peer: PeerID) {
        guard case .accepted(let index) = scheduler.holds(peer: peer, taskID: done.taskID, attempt: done.attempt) else {
            logger.warning("dropped result for a task the peer does not hold", metadata: [
                "peer": "\(peer)", "task.id": "\(done.taskID)", "attempt": "\(done.attempt)"])
            return
        }
        let entry = inbound.removeValue(forKey: peer)
        if split.isBlockTask(index) {
            finishBlock(done, index: index, entry: entry, from: peer)
            return
        }
        let module = plan.modules[index]
        do {
            guard let entry, entry.taskID == done.taskID, entry.attempt == done.attempt else {
                throw CoordinatorError(.badResult, "task done without result chunks")
            }
            let body = try entry.chunks.assembled(expectedBytes: done.resultBytes, expectedCRC32C: done.resultCRC32C)
            let rank = Int(done.outRank)
            let header = CheckpointRecordHeader(
                module: module.name, block: 0, rank: rank, outFeatures: module.outFeatures, inFeatures: module.inFeatures,
                bodyBytes: body.count, stats: try CanonicalJSON.decode(ModuleStats.self, Array(done.statsJSON.utf8)),
                workerID: scheduler.workerID(of: peer) ?? "\(peer)", attempts: Int(done.attempt), seconds: done.seconds)
            guard rank > 0, body.count == header.expectedBodyBytes else {
                throw CoordinatorError(.badResult,
                    "result is \(body.count) bytes but rank \(rank) of [\(module.outFeatures), \(module.inFeatures)] needs \(header.expectedBodyBytes)")
            }
            try store.write(CheckpointRecord(header: header, body: body), index: index)
            metrics?.checkpointWrites.increment()
            metrics?.taskSeconds.record(done.seconds)
            finishedHeaders[index] = header
            resultBytesReceived += body.count
        } catch let error as CoordinatorError where error.code == .io {
            // Cannot checkpoint: retrying elsewhere will not help; fail the job with the reason.
            _ = scheduler.fail(peer: peer, taskID: done.taskID, attempt: done.attempt, error: "\(error)", retryable: false)
            return
        } catch {
            rejectResult(peer: peer, taskID: done.taskID, attempt: done.attempt, reason: "\(error)")
            return
        }
        _ = scheduler.complete(peer: peer, taskID: done.taskID, attempt: done.attempt)
        progress.update(done: scheduler.doneCount, workers: scheduler.aliveWorkers, retries: scheduler.retries,
                        finishedModule: module.name, force: true)
    }

    /// A block task's result: verified, stored, and the round reduced when it was the last block.
    private func finishBlock(_ done: Wire.TaskDone, index: Int, entry: (taskID: UInt64, attempt: UInt32, chunks: ChunkReassembler)?,
                             from peer: PeerID) {
        let partial: BlockPartial
        do {
            guard let entry, entry.taskID == done.taskID, entry.attempt == done.attempt else {
                throw CoordinatorError(.badResult, "task done without result chunks")
            }
            let body = try entry.chunks.assembledSlice(expectedBytes: done.resultBytes, expectedCRC32C: done.resultCRC32C)
            partial = try split.partial(from: body, taskIndex: index)
            resultBytesReceived += body.count
        } catch {
            rejectResult(peer: peer, taskID: done.taskID, attempt: done.attempt, reason: "\(error)")
            return
        }
        _ = scheduler.complete(peer: peer, taskID: done.taskID, attempt: done.attempt)
        payloadCarried[index] = nil
        // The worker is free: give it its next block (of this round, or another restart's) before the reduction
        // and checkpoint below, which would otherwise keep it waiting (measured: most of a worker's idle time).
        for assignment in scheduler.dispatch() { send(assignment) }
        do {
            switch try split.accept(partial, taskIndex: index, seconds: done.seconds.isFinite ? max(0, done.seconds) : 0,
                                    store: store) {
            case .waiting:
                break
            case .nextRound(let module):
                logger.debug("split module round reduced", metadata: [
                    "module": "\(plan.modules[module].name)", "round": "\(split.round(of: module))",
                    "kind": "\(partial.kind)"])
                split.queueRounds(module: module, plan: plan, scheduler: &scheduler)
            case .finished(let module, let outcome, let seconds):
                try finishSplitModule(module, outcome: outcome, seconds: seconds)
            }
        } catch {
            scheduler.failJob(reason: "\(error)")
        }
    }

    /// Writes a split module's result as its checkpoint record, like any module's, and marks it done.
    private func finishSplitModule(_ index: Int, outcome: BlockKMeansOutcome, seconds: Double) throws {
        let module = plan.modules[index]
        let result: ModuleResult
        do {
            result = try SplitLego.result(module: module, spec: plan.spec, outcome: outcome)
        } catch {
            throw CoordinatorError(.badResult, "module \(module.name): \(error)")
        }
        let body = ResultBody.encode(result)
        let header = CheckpointRecordHeader(
            module: module.name, block: 0, rank: result.rank, outFeatures: module.outFeatures, inFeatures: module.inFeatures,
            bodyBytes: body.count, stats: result.stats, workerID: "split:\(module.blocks?.count ?? 0)-blocks",
            attempts: 1, seconds: seconds)
        try store.write(CheckpointRecord(header: header, body: body), index: index)
        store.removeKMeansState(index: index)
        finishedHeaders[index] = header
        scheduler.markDone(index)
        let kinds = split.secondsByKind(of: index)
        let checkpoint = split.checkpointCost(of: index)
        logger.info("split module done", metadata: ["module": "\(module.name)", "rounds": "\(split.round(of: index))",
                                                    "iterations": "\(outcome.iterations)", "rank": "\(result.rank)",
                                                    "restart": "\(outcome.restart)",
                                                    "first_center_s": "\(String(format: "%.2f", kinds.firstCenter))",
                                                    "seeding_s": "\(String(format: "%.2f", kinds.seeding))",
                                                    "lloyd_s": "\(String(format: "%.2f", kinds.lloyd))",
                                                    "principal_s": "\(String(format: "%.2f", kinds.principal))",
                                                    "power_iterations": "\(outcome.powerIterations)",
                                                    "statistics_s": "\(String(format: "%.2f", kinds.statistics))",
                                                    "refit_s": "\(String(format: "%.2f", kinds.refit))",
                                                    "refit_rounds": "\(outcome.refitRounds)",
                                                    "checkpoint_mb": "\(String(format: "%.1f", Double(checkpoint.bytes) / 1e6))",
                                                    "checkpoint_cpu_s": "\(String(format: "%.2f", checkpoint.seconds))"])
        progress.update(done: scheduler.doneCount, workers: scheduler.aliveWorkers, retries: scheduler.retries,
                        finishedModule: module.name, force: true)
    }

    /// Inline mode: after a block task failed on `peer`, do not assume it holds that block any more.
    private func forgetBlock(taskID: UInt64, peer: PeerID) {
        guard taskID < UInt64(Int.max), let (module, block) = split.block(of: Int(taskID)) else { return }
        blocksHeld[peer]?.remove(TaskKey(module: plan.modules[module].name, block: block + 1))
    }

    private func rejectResult(peer: PeerID, taskID: UInt64, attempt: UInt32, reason: String) {
        forgetBlock(taskID: taskID, peer: peer)
        logger.warning("result rejected; task will be retried", metadata: [
            "peer": "\(peer)", "task.id": "\(taskID)", "attempt": "\(attempt)", "module": "\(moduleName(taskID))",
            "error": "\(reason)"])
        _ = scheduler.fail(peer: peer, taskID: taskID, attempt: attempt, error: reason, retryable: true)
    }

    /// Generous bound on a result body: the output rank cannot exceed the inputs' total rank nor min(out, in)·2.
    private func maxResultBytes(_ module: ModulePlan) -> Int {
        let totalRank = module.sources.reduce(0) { $0 + $1.module.rank }
        let rank = max(totalRank, plan.spec.rank, 1)
        return 4 * rank * (module.outFeatures + module.inFeatures) + 4096
    }

    // MARK: sending

    private func send(_ assignment: Assignment) {
        if split.isBlockTask(assignment.taskIndex) {
            sendBlock(assignment)
            return
        }
        let module = plan.modules[assignment.taskIndex]
        let task: Wire.Task
        do {
            task = try Wire.Task(module: module, spec: plan.spec, jobID: jobID, taskID: assignment.taskID,
                                 attempt: assignment.attempt, inputMode: options.inputMode,
                                 resultChunkBytes: options.resultChunkBytes)
        } catch {
            _ = scheduler.fail(peer: assignment.peer, taskID: assignment.taskID, attempt: assignment.attempt,
                               error: "\(error)", retryable: false)
            return
        }
        logger.debug("task sent", metadata: ["peer": "\(assignment.peer)", "task.id": "\(assignment.taskID)",
                                            "attempt": "\(assignment.attempt)", "module": "\(module.name)"])
        tasksSent += 1
        guard send(.task(task), to: assignment.peer) else { return }
        guard options.inputMode == .inline else { return }
        _ = sendInputs(module.sources, for: assignment)
    }

    /// Inline mode: streams the stored factors of `sources` (the task's inputs, in order) after its task message.
    /// Returns false when the task failed instead (unreadable input, or the worker was lost).
    private func sendInputs(_ sources: ArraySlice<ModuleSource>, for assignment: Assignment) -> Bool {
        for (inputIndex, source) in sources.enumerated() {
            let factors: [(factor: UInt32, bytes: [UInt8])]
            do {
                factors = try FactorReader.factors(of: source.module)
            } catch {
                _ = scheduler.fail(peer: assignment.peer, taskID: assignment.taskID, attempt: assignment.attempt,
                                   error: "\(error)", retryable: false)
                return false
            }
            for (factor, bytes) in factors {
                let chunks = Chunking.inputChunks(of: bytes, taskID: assignment.taskID, attempt: assignment.attempt,
                                                  inputIndex: UInt32(inputIndex), factor: factor,
                                                  maxChunkBytes: options.inputChunkBytes)
                for chunk in chunks {
                    guard send(.inputChunk(chunk), to: assignment.peer) else { return false }
                }
            }
        }
        return true
    }

    private func sendInputs(_ sources: [ModuleSource], for assignment: Assignment) -> Bool {
        sendInputs(sources[...], for: assignment)
    }

    /// A split module's block task. Inline mode streams the block's inputs only to a worker not known to hold the
    /// block (workers cache blocks between rounds); a worker that lost it fails the task and the retry resends.
    private func sendBlock(_ assignment: Assignment) {
        guard let (module, block) = split.block(of: assignment.taskIndex), let blocks = plan.modules[module].blocks else {
            _ = scheduler.fail(peer: assignment.peer, taskID: assignment.taskID, attempt: assignment.attempt,
                               error: "block task \(assignment.taskIndex) has no running round", retryable: false)
            return
        }
        let key = TaskKey(module: plan.modules[module].name, block: block + 1)
        let inline = options.inputMode == .inline
        let inputsFollow = inline && !(blocksHeld[assignment.peer]?.contains(key) ?? false)
        if let payload = split.payload(of: assignment.taskIndex) {
            payloadReferences += 1
            if payloadsHeld[assignment.peer]?[payload.slot] != payload.id {
                // Once per worker connection and round: ZeroMQ delivers in order, so it arrives before the task.
                let message = Wire.RoundPayload(payloadID: payload.id, module: plan.modules[module].name,
                                                track: UInt32(clamping: payload.track), centers: payload.centers,
                                                crc32c: payload.crc32c)
                guard send(.roundPayload(message), to: assignment.peer) else { return }
                payloadsHeld[assignment.peer, default: [:]][payload.slot] = payload.id
                payloadCarried[assignment.taskIndex] = assignment.attempt
                roundPayloadsSent += 1
                roundPayloadBytesSent += payload.centers.count
                logger.debug("round payload sent", metadata: ["peer": "\(assignment.peer)", "payload.id": "\(payload.id)",
                                                              "module": "\(plan.modules[module].name)", "track": "\(payload.track)",
                                                              "bytes": "\(payload.centers.count)"])
            }
        }
        do {
            guard let message = try split.message(taskIndex: assignment.taskIndex, plan: plan, jobID: jobID,
                                                  attempt: assignment.attempt, inputMode: options.inputMode,
                                                  inputsFollow: inputsFollow,
                                                  resultChunkBytes: options.resultChunkBytes) else {
                throw CoordinatorError(.unsupportedPlan, "block task \(assignment.taskIndex) has no running round")
            }
            tasksSent += 1
            guard send(.kmeansBlockTask(message), to: assignment.peer) else { return }
        } catch {
            _ = scheduler.fail(peer: assignment.peer, taskID: assignment.taskID, attempt: assignment.attempt,
                               error: "\(error)", retryable: false)
            return
        }
        guard inputsFollow else { return }
        if sendInputs(plan.modules[module].sources[blocks[block].sources], for: assignment) {
            blocksHeld[assignment.peer, default: []].insert(key)
        }
    }

    private func sendHeartbeats(now: ContinuousClock.Instant) {
        for peer in scheduler.peers where now - (lastSent[peer] ?? now - .seconds(3600)) >= options.scheduler.heartbeatInterval {
            heartbeatSequence += 1
            send(.heartbeat(sequence: heartbeatSequence), to: peer)
        }
    }

    /// Sends to a known worker; a peer that cannot be reached is treated as lost. Returns false if it was.
    @discardableResult
    private func send(_ message: WireMessage, to peer: PeerID) -> Bool {
        do {
            // Packed straight into the ZeroMQ message.
            let size = try socket?.send(message, to: peer.bytes) ?? 0
            metrics?.bytesSent.increment(by: Int64(size))
            lastSent[peer] = .now
            switch message {
            case .task, .inputChunk, .kmeansBlockTask, .roundPayload: taskBytesSent += size
            default: break
            }
            return true
        } catch {
            logger.warning("worker unreachable; task requeued", metadata: ["peer": "\(peer)", "error": "\(error)"])
            scheduler.removeWorker(peer, countsAgainstTask: true)
            forget(peer)
            return false
        }
    }

    /// Sends to a peer that is not (or no longer) a worker: failures only matter to the log.
    private func sendRaw(_ message: WireMessage, to peer: PeerID, protocolVersion: UInt32 = Wire.protocolVersion) {
        do {
            let size = try socket?.send(message, to: peer.bytes, dontWait: true, protocolVersion: protocolVersion) ?? 0
            metrics?.bytesSent.increment(by: Int64(size))
        } catch {
            logger.debug("could not answer peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// Says Disconnect to every worker before the coordinator closes its socket. Closing gives queued messages
    /// only `ZMQ_LINGER` to leave; 200 ms was not always enough for the I/O thread to encrypt and flush them on a
    /// loaded machine, and a worker that misses its Disconnect keeps reconnecting to a coordinator that is gone.
    /// A longer linger costs nothing when the messages leave at once; it bounds the wait for a stuck peer.
    private func disconnectAll(reason: String) {
        try? socket?.setLinger(milliseconds: 3000)
        for peer in scheduler.peers { sendRaw(.disconnect(reason: reason), to: peer) }
    }

    private func forget(_ peer: PeerID) {
        inbound[peer] = nil
        lastSent[peer] = nil
        blocksHeld[peer] = nil
        payloadsHeld[peer] = nil
    }

    private func moduleName(_ taskID: UInt64) -> String {
        if taskID < UInt64(plan.modules.count) { return plan.modules[Int(taskID)].name }
        if taskID < UInt64(Int.max), let block = split.describe(Int(taskID), plan: plan) { return block }
        return "?"
    }
}
