import AdapterIO
import Foundation
import Logging
import WireProtocol

/// One connection to the coordinator: Hello, Welcome, then tasks and heartbeats until the connection ends.
/// Owns the socket (single thread) and the task in progress.
struct WorkerSession {
    private enum Phase {
        case awaitingWelcome
        case idle
        case receivingInputs(InlineInputs)
        case computing(TaskComputation)
        /// Test-only `hang-after-tasks`: silent, but alive.
        case hanging
    }

    private let worker: Worker
    private let socket: ZMQSocket
    /// The socket's handshake events (why a coordinator refused us).
    private let monitor: ZMQSocket?
    /// Consecutive failed handshakes, across reconnections (kept by the worker; reset by a successful one).
    private var failedHandshakes: Int {
        get { worker.failedHandshakes }
        nonmutating set { worker.failedHandshakes = newValue }
    }
    private var phase = Phase.awaitingWelcome
    private var interval: Duration
    private var liveness: Int
    private var lastHeard = ContinuousClock.now
    private var nextHeartbeat = ContinuousClock.now
    private var heartbeatSequence: UInt64 = 0
    private var welcomed = false
    /// The shared centers of split rounds received on this connection.
    private var payloads = RoundPayloadCache()
    /// Raised by the computing thread when its outcome is ready, so the result leaves at once.
    private let wake: WakeSignal
    private var logger: Logger { worker.logger }
    private var isHanging: Bool {
        if case .hanging = phase { return true }
        return false
    }

    init(worker: Worker, context: ZMQContext, connection: Int) throws {
        self.worker = worker
        wake = try WakeSignal()
        let configuration = worker.configuration
        interval = .milliseconds(configuration.heartbeatIntervalMilliseconds)
        liveness = configuration.heartbeatLiveness
        // Identity must be 1...255 bytes. The per-process nonce keeps two workers started with the same --id apart
        // (a ROUTER ignores a second connection with an identity in use); the connection number keeps
        // reconnections distinct from the connection the coordinator may not have noticed is dead.
        let identity = Array("\(configuration.workerID)/\(worker.identityNonce)/\(connection)".utf8.suffix(255))
        socket = try ZMQSocket.dealer(context: context, identity: identity)
        // A send to a dead coordinator must not block past the liveness window.
        try socket.setSendTimeout(milliseconds: Int32(clamping: configuration.heartbeatIntervalMilliseconds * configuration.heartbeatLiveness))
        if let curve = worker.curveKeys { try socket.makeCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        // Handshake events tell a refused worker why (unknown key, wrong server key, CURVE on one side only).
        monitor = try socket.monitor(endpoint: "inproc://brickyard-monitor-\(worker.identityNonce)-\(connection)",
                                     events: ZMQMonitorEvent.handshakeSucceeded | ZMQMonitorEvent.handshakeFailedAuth
                                         | ZMQMonitorEvent.handshakeFailedProtocol | ZMQMonitorEvent.handshakeFailedNoDetail)
        try socket.connect(configuration.endpoint)
    }

    /// After this many failed CURVE handshakes in a row (no refusal from the ZAP handler, just a broken
    /// handshake) the keys cannot work: the server key is wrong or the coordinator does not speak CURVE.
    static let handshakeFailureLimit = 3

    mutating func run() -> SessionOutcome {
        defer {
            socket.stopMonitor()
            monitor?.close()
            socket.close()
        }
        let configuration = worker.configuration
        let hello = Wire.Hello(
            workerID: configuration.workerID, version: BrickyardVersion.build,
            cores: UInt32(clamping: ProcessInfo.processInfo.activeProcessorCount),
            blasThreads: UInt32(clamping: configuration.threads),
            pid: UInt32(clamping: ProcessInfo.processInfo.processIdentifier), hostname: ProcessInfo.processInfo.hostName)
        guard send(.hello(hello)) else { return .lost(wasWelcomed: false) }
        lastHeard = .now
        logger.info("connecting", metadata: ["endpoint": "\(configuration.endpoint)"])

        while true {
            if let reason = worker.stopFlag.requestedReason {
                // A (test-only) hanging worker stays silent to the end.
                // dontWait: a vanished coordinator must not delay the stop by a whole send timeout; a queued
                // Disconnect still leaves within the socket's linger.
                if welcomed && !isHanging { _ = send(.disconnect(reason: "worker stopping (\(reason))"), quiet: true, dontWait: true) }
                abandonTask()
                return .stopped(reason)
            }
            if case .hanging = phase {
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            if let outcome = finishComputationIfDone() { return outcome }
            if startHangingIfDue() { continue }

            let now = ContinuousClock.now
            let silenceLimit = interval * liveness
            let untilHeartbeat = welcomed ? nextHeartbeat - now : silenceLimit
            let timeout = min(untilHeartbeat, lastHeard + silenceLimit - now, .milliseconds(100))
            let sockets = [socket] + (monitor.map { [$0] } ?? [])
            let readable: [Bool]
            do {
                readable = try ZMQPoll.readable(sockets, fileDescriptors: [wake.fileDescriptor],
                                                timeoutMilliseconds: max(0, timeout.wholeMilliseconds))
            } catch {
                logger.warning("poll failed", metadata: ["error": "\(error)"])
                abandonTask()
                return .lost(wasWelcomed: welcomed)
            }
            // The outcome is looked at on the next turn, before any new message.
            if readable[sockets.count] { wake.clear() }
            if sockets.count > 1, readable[1], let outcome = drainHandshakeEvents() {
                abandonTask()
                return outcome
            }
            if readable[0], let outcome = drainMessages() { return outcome }
            if startHangingIfDue() { continue }

            let after = ContinuousClock.now
            if after - lastHeard > silenceLimit {
                logger.warning("no message from the coordinator within liveness", metadata: [
                    "silence.ms": "\((after - lastHeard).wholeMilliseconds)", "limit.ms": "\(silenceLimit.wholeMilliseconds)"])
                abandonTask()
                return .lost(wasWelcomed: welcomed)
            }
            if welcomed && after >= nextHeartbeat {
                heartbeatSequence += 1
                guard send(.heartbeat(sequence: heartbeatSequence)) else { abandonTask(); return .lost(wasWelcomed: true) }
                nextHeartbeat = after + interval
            }
        }
    }

    // MARK: - Receiving

    /// Handshake events: a ZAP refusal ends the worker at once; repeated broken handshakes too (they mean the
    /// keys cannot work, or one side speaks CURVE and the other not).
    private mutating func drainHandshakeEvents() -> SessionOutcome? {
        guard let monitor else { return nil }
        while let frames = try? monitor.receive(dontWait: true), let event = ZMQMonitorEvent(frames) {
            switch event.event {
            case ZMQMonitorEvent.handshakeSucceeded:
                failedHandshakes = 0
                logger.debug("CURVE handshake succeeded", metadata: ["endpoint": "\(event.endpoint)"])
            case ZMQMonitorEvent.handshakeFailedAuth:
                let key = worker.curveKeys?.keys.publicKey ?? "?"
                return .refused("the coordinator refused this worker's CURVE key (ZAP status \(event.value)): public key \(key) is not in the coordinator's --allow directory")
            default:
                failedHandshakes += 1
                let curve = worker.curveKeys != nil
                let detail = switch (event.event == ZMQMonitorEvent.handshakeFailedProtocol, curve) {
                case (true, true): "protocol error 0x\(String(event.value, radix: 16)) (does the coordinator run with --curve-secret?)"
                case (true, false): "protocol error 0x\(String(event.value, radix: 16)) (the coordinator may require CURVE: pass --curve-server-key and --curve-secret)"
                case (false, true): "the coordinator closed the connection during the handshake (errno \(event.value))"
                case (false, false): "the coordinator closed the connection during the handshake (errno \(event.value); the coordinator may require CURVE: pass --curve-server-key and --curve-secret)"
                }
                logger.warning("CURVE handshake with the coordinator failed", metadata: [
                    "endpoint": "\(event.endpoint)", "detail": "\(detail)", "failures": "\(failedHandshakes)"])
                if failedHandshakes >= Self.handshakeFailureLimit {
                    return .refused("CURVE handshake with the coordinator failed \(failedHandshakes) times in a row: \(detail)"
                                    + (curve ? "; check that --curve-server-key is the coordinator's public key" : ""))
                }
            }
        }
        return nil
    }

    /// Handles every queued message (bounded, so heartbeats are not starved by a flood).
    private mutating func drainMessages() -> SessionOutcome? {
        for _ in 0..<256 {
            let frames: [[UInt8]]
            do {
                guard let received = try socket.receive(dontWait: true) else { return nil }
                frames = received
            } catch {
                logger.warning("receive failed", metadata: ["error": "\(error)"])
                abandonTask()
                return .lost(wasWelcomed: welcomed)
            }
            guard frames.count == 1 else {
                logger.warning("dropped message with unexpected frame count", metadata: ["frames": "\(frames.count)"])
                continue
            }
            let decoded: (version: UInt32, message: WireMessage)
            do {
                decoded = try WireCodec.decode(frames[0])
            } catch {
                logger.warning("dropped malformed message from the coordinator", metadata: ["error": "\(error)"])
                continue
            }
            if case .reject(let reason) = decoded.message, decoded.version != Wire.protocolVersion {
                // Honoured whatever its version: it is the coordinator's last word (an older coordinator refusing
                // this worker's version stamps it with its own).
                return .rejected("\(reason) (the coordinator speaks protocol version \(decoded.version), this worker \(Wire.protocolVersion))")
            }
            guard decoded.version == Wire.protocolVersion else {
                logger.warning("dropped message with another protocol version", metadata: [
                    "version": "\(decoded.version)", "expected": "\(Wire.protocolVersion)"])
                continue
            }
            lastHeard = .now
            if let outcome = handle(decoded.message) { return outcome }
        }
        return nil
    }

    private mutating func handle(_ message: WireMessage) -> SessionOutcome? {
        switch message {
        case .welcome(let welcome):
            guard !welcomed else { return nil }
            welcomed = true
            phase = .idle
            // The coordinator sets the pace for both sides; keep ours for fields it leaves at 0.
            if welcome.heartbeatIntervalMilliseconds > 0 { interval = .milliseconds(Int(welcome.heartbeatIntervalMilliseconds)) }
            if welcome.heartbeatLiveness > 0 { liveness = Int(welcome.heartbeatLiveness) }
            nextHeartbeat = .now
            logger.info("welcomed", metadata: ["job.id": "\(welcome.jobID)", "heartbeat.ms": "\(interval.wholeMilliseconds)",
                                               "liveness": "\(liveness)"])
        case .reject(let reason):
            return .rejected(reason)
        case .disconnect(let reason):
            abandonTask()
            return .dismissed(reason)
        case .heartbeat:
            break
        case .task(let task):
            guard welcomed else {
                logger.warning("dropped task received before welcome", metadata: ["task.id": "\(task.taskID)"])
                return nil
            }
            return start(task)
        case .kmeansBlockTask(let block):
            guard welcomed else {
                logger.warning("dropped block task received before welcome", metadata: ["task.id": "\(block.task.taskID)"])
                return nil
            }
            return start(block)
        case .roundPayload(let payload):
            guard welcomed else {
                logger.warning("dropped round payload received before welcome", metadata: ["payload.id": "\(payload.payloadID)"])
                return nil
            }
            if worker.faults.dropPayloads > 0 {
                worker.faults.dropPayloads -= 1
                logger.warning("TEST-ONLY fault: dropped round payload \(payload.payloadID)")
                return nil
            }
            do {
                try payloads.store(payload)
            } catch {
                // A task that refers to it fails with missing_payload; the coordinator resends it with the retry.
                logger.warning("dropped bad round payload", metadata: ["payload.id": "\(payload.payloadID)", "error": "\(error)"])
            }
        case .inputChunk(let chunk):
            guard case .receivingInputs(var inputs) = phase, inputs.owns(chunk) else {
                logger.debug("dropped input chunk for a task not in progress", metadata: ["task.id": "\(chunk.taskID)"])
                return nil
            }
            do {
                try inputs.add(chunk)
                if inputs.isComplete, let block = inputs.block {
                    phase = .computing(TaskComputation.start(block: block, cache: worker.blockCache,
                                                             inlineFactors: try inputs.assembled(),
                                                             delayMilliseconds: worker.faults.slowTaskMilliseconds, wake: wake))
                } else if inputs.isComplete {
                    phase = .computing(TaskComputation.start(inputs.validated, inlineFactors: try inputs.assembled(),
                                                             delayMilliseconds: worker.faults.slowTaskMilliseconds, wake: wake))
                } else {
                    phase = .receivingInputs(inputs)
                }
            } catch {
                phase = .idle
                return report(failure: TaskFailure(error), for: inputs.validated.task)
            }
        case .hello, .resultChunk, .taskDone, .taskFailed, .evalRequest, .evalResult, .evalFailed:
            logger.warning("dropped message a merge coordinator must not send", metadata: ["message": "\(message.kindName)"])
        }
        return nil
    }

    // MARK: - Tasks

    private mutating func start(_ task: Wire.Task) -> SessionOutcome? {
        if let current = taskInProgress, current.taskID == task.taskID, current.attempt == task.attempt {
            logger.warning("duplicate of the task in progress dropped", metadata: ["task.id": "\(task.taskID)"])
            return nil
        }
        guard case .idle = phase else {
            logger.warning("task received while busy; refused", metadata: ["task.id": "\(task.taskID)"])
            return report(failure: TaskFailure(message: "worker \(worker.configuration.workerID) is busy with another task", retryable: true),
                          for: task, countsAsFinished: false)
        }
        logger.info("task received", metadata: ["task.id": "\(task.taskID)", "attempt": "\(task.attempt)",
                                                "module": "\(task.module)", "method": "\(task.method)"])
        if worker.faults.failTasks {
            return report(failure: TaskFailure(message: "injected failure (test-only fail-tasks) for module \(task.module)", retryable: true),
                          for: task)
        }
        do {
            let validated = try ValidatedTask(task, limits: worker.configuration.limits)
            switch task.inputMode {
            case .shared:
                phase = .computing(TaskComputation.start(validated, inlineFactors: nil,
                                                         delayMilliseconds: worker.faults.slowTaskMilliseconds, wake: wake))
            case .inline: phase = .receivingInputs(InlineInputs(validated))
            }
        } catch {
            return report(failure: TaskFailure(error), for: task)
        }
        return nil
    }

    /// A k-means round on one block of a split module. Shared mode: the worker reads its block's inputs when it does
    /// not hold the block. Inline mode: the inputs follow as InputChunks when the coordinator believes this worker
    /// does not hold the block; otherwise the block must be in the cache (a miss fails the task, retryable, and the
    /// coordinator resends with the inputs).
    private mutating func start(_ block: Wire.KMeansBlockTask) -> SessionOutcome? {
        let task = block.task
        if let current = taskInProgress, current.taskID == task.taskID, current.attempt == task.attempt {
            logger.warning("duplicate of the task in progress dropped", metadata: ["task.id": "\(task.taskID)"])
            return nil
        }
        guard case .idle = phase else {
            logger.warning("block task received while busy; refused", metadata: ["task.id": "\(task.taskID)"])
            return report(failure: TaskFailure(message: "worker \(worker.configuration.workerID) is busy with another task", retryable: true),
                          for: task, countsAsFinished: false)
        }
        logger.debug("block task received", metadata: ["task.id": "\(task.taskID)", "attempt": "\(task.attempt)",
                                                       "module": "\(task.module)", "block": "\(task.blockIndex)",
                                                       "round": "\(block.round)"])
        if worker.faults.failTasks {
            return report(failure: TaskFailure(message: "injected failure (test-only fail-tasks) for module \(task.module)", retryable: true),
                          for: task)
        }
        var shared: [Float]?
        if block.payloadID != 0 {
            shared = payloads.centers(id: block.payloadID, crc32c: block.payloadCRC32C)
            guard shared != nil else {
                let message = "round payload \(block.payloadID) of module \(task.module) is not held on this connection"
                return report(failure: TaskFailure(message: message, retryable: true), for: task, missingPayload: block.payloadID)
            }
        }
        do {
            let validated = try ValidatedBlockTask(block, sharedCenters: shared, limits: worker.configuration.limits)
            if task.inputMode == .inline && block.inputsFollow {
                phase = .receivingInputs(InlineInputs(validated.validated, block: validated))
            } else {
                phase = .computing(TaskComputation.start(block: validated, cache: worker.blockCache,
                                                         delayMilliseconds: worker.faults.slowTaskMilliseconds, wake: wake))
            }
        } catch {
            return report(failure: TaskFailure(error), for: task)
        }
        return nil
    }

    private var taskInProgress: Wire.Task? {
        switch phase {
        case .receivingInputs(let inputs): inputs.validated.task
        case .computing(let computation): computation.task
        case .awaitingWelcome, .idle, .hanging: nil
        }
    }

    /// Streams a finished computation's result (or its failure) and returns to idle.
    private mutating func finishComputationIfDone() -> SessionOutcome? {
        guard case .computing(let computation) = phase, let outcome = computation.outcome else { return nil }
        phase = .idle
        let task = computation.task
        switch outcome {
        case .failure(let failure):
            return report(failure: failure, for: task)
        case .success(let result):
            worker.tasksFinished += 1
            let maxChunk = task.resultChunkBytes > 0 ? Int(task.resultChunkBytes) : Chunking.defaultChunkBytes
            let ranges = Chunking.ranges(byteCount: result.body.count, maxChunkBytes: maxChunk)
            for (sequence, range) in ranges.enumerated() {
                // A body of one chunk (a split round's partial) is sent as it is, with the CRC already computed.
                let whole = ranges.count == 1
                let chunk = Wire.ResultChunk(taskID: task.taskID, attempt: task.attempt, sequence: UInt32(sequence),
                                             total: UInt32(ranges.count), payload: whole ? result.body : Array(result.body[range]),
                                             crc32c: whole ? result.bodyCRC32C : CRC32C.checksum(result.body[range]))
                guard send(.resultChunk(chunk)) else { return .lost(wasWelcomed: true) }
                if sequence == 0 { dieIfInjected() }
            }
            let done = Wire.TaskDone(taskID: task.taskID, attempt: task.attempt, outRank: UInt32(clamping: result.outRank),
                                     resultBytes: UInt64(result.body.count), resultCRC32C: result.bodyCRC32C,
                                     statsJSON: result.statsJSON, seconds: result.seconds)
            guard send(.taskDone(done)) else { return .lost(wasWelcomed: true) }
            // Block rounds of split modules are many and short: debug level.
            logger.log(level: task.kind == .mergeModule ? .info : .debug, "task done",
                       metadata: ["task.id": "\(task.taskID)", "module": "\(task.module)",
                                                "rank": "\(result.outRank)", "bytes": "\(result.body.count)",
                                                "seconds": "\(result.seconds)"])
            return nil
        }
    }

    private mutating func report(failure: TaskFailure, for task: Wire.Task, countsAsFinished: Bool = true,
                                 missingPayload: UInt64 = 0) -> SessionOutcome? {
        if countsAsFinished { worker.tasksFinished += 1 }
        logger.warning("task failed", metadata: ["task.id": "\(task.taskID)", "module": "\(task.module)",
                                                 "retryable": "\(failure.retryable)", "error": "\(failure.message)"])
        let message = Wire.TaskFailed(taskID: task.taskID, attempt: task.attempt, error: failure.message,
                                      retryable: failure.retryable, missingPayload: missingPayload)
        return send(.taskFailed(message)) ? nil : .lost(wasWelcomed: welcomed)
    }

    /// The connection is ending with a task unfinished: the coordinator requeues it. A running computation
    /// cannot be cancelled; the worker waits for it before reconnecting, and a worker that stops instead leaves
    /// through `WorkerProcess.exit` (`_exit`), which never runs finalizers under a computing thread.
    private mutating func abandonTask() {
        if case .computing(let computation) = phase { worker.orphanedComputation = computation }
        phase = .idle
    }

    // MARK: - Test-only faults

    private mutating func startHangingIfDue() -> Bool {
        guard welcomed, case .idle = phase, let after = worker.faults.hangAfterTasks, worker.tasksFinished >= after,
              worker.faults.claimOneShot() else { return false }
        logger.warning("TEST-ONLY fault: hanging (no heartbeats, no answers) after \(worker.tasksFinished) tasks")
        phase = .hanging
        return true
    }

    private func dieIfInjected() {
        guard worker.faults.dieInTask, worker.faults.claimOneShot() else { return }
        logger.warning("TEST-ONLY fault: SIGKILL in the middle of a task")
        // Give ZeroMQ's I/O thread a moment so the coordinator really sees a partial result.
        Thread.sleep(forTimeInterval: 0.05)
        kill(getpid(), SIGKILL)
    }

    // MARK: - Sending

    /// Sends; false (after logging) if the coordinator cannot be reached within the send timeout.
    private func send(_ message: WireMessage, quiet: Bool = false, dontWait: Bool = false) -> Bool {
        do {
            try socket.send(message, dontWait: dontWait)
            return true
        } catch {
            if !quiet { logger.warning("send to the coordinator failed", metadata: ["error": "\(error)"]) }
            return false
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down (negative durations stay negative).
    var wholeMilliseconds: Int {
        let parts = components
        return Int(parts.seconds) * 1000 + Int(parts.attoseconds / 1_000_000_000_000_000)
    }
}
