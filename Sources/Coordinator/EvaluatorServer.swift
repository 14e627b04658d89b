import Adaptive
import AdapterIO
import Foundation
import Logging
import WireProtocol

/// How an adapt/eval coordinator serves evaluators.
public struct EvaluatorServerOptions: Sendable {
    /// ZeroMQ endpoint to bind (`tcp://0.0.0.0:5555`, `ipc:///…`).
    public var bind: String
    public var heartbeatInterval: Duration
    public var liveness: Int
    /// Failures (or lost evaluators) one request may suffer before the job fails.
    public var maxAttempts: Int
    /// If set, the bound endpoint is written here once listening (tests, scripts).
    public var endpointFile: String?
    /// The job fails when no evaluator has been connected for this long while work is waiting.
    public var noEvaluatorTimeout: Duration

    public init(bind: String, heartbeatInterval: Duration = .seconds(1), liveness: Int = 5, maxAttempts: Int = 3,
                endpointFile: String? = nil, noEvaluatorTimeout: Duration = .seconds(600)) {
        self.bind = bind; self.heartbeatInterval = heartbeatInterval; self.liveness = liveness
        self.maxAttempts = maxAttempts; self.endpointFile = endpointFile; self.noEvaluatorTimeout = noEvaluatorTimeout
    }
}

/// The coordinator's network side for evaluators (role evaluator): binds a ROUTER, admits evaluators (Hello →
/// Welcome with the base model, or Reject naming the role or protocol version needed), and answers
/// `EvaluationBackend.evaluate` by handing one request at a time to each idle evaluator, requeueing the request of
/// an evaluator that fails, leaves or stops heartbeating. Answers are returned in job order, so reductions over
/// them do not depend on which evaluator computed what. Malformed or unexpected messages are logged and dropped.
///
/// Single-threaded: the socket and all state belong to the thread that calls `start()` and `evaluate`.
public final class EvaluatorServer: EvaluationBackend {
    private struct Evaluator {
        var workerID: String
        var lastHeard: ContinuousClock.Instant
        var lastSent: ContinuousClock.Instant
        /// Index (into the current batch) of the request it is computing.
        var busyWith: Int?
    }

    private let options: EvaluatorServerOptions
    private let jobID: String
    private let baseModelPath: String
    private let examples: [Wire.Example]
    private let adapters: [Wire.AdapterRef]
    private let logger: Logger
    private let stop: StopSignal
    private var context: ZMQContext?
    private var socket: ZMQSocket?
    private var evaluators: [PeerID: Evaluator] = [:]
    private var joinOrder: [PeerID] = []
    private var nextRequestID: UInt64 = 1
    private var heartbeatSequence: UInt64 = 0
    private var lastEvaluatorSeen = ContinuousClock.now
    /// The latest reason a peer was refused, for the error when no evaluator can join.
    public private(set) var lastRejection: String?
    public private(set) var boundEndpoint: String?
    /// Requests answered, and retried, over the server's life.
    public private(set) var requestsAnswered = 0
    public private(set) var retries = 0
    /// Seconds evaluators reported computing, summed.
    public private(set) var evaluatorSeconds = 0.0
    /// Called on every loop iteration; may throw to end the job (local evaluator supervision).
    public var onTick: (() throws -> Void)?
    /// Called with the worker ID of an evaluator declared dead for missing heartbeats.
    public var onEvaluatorLost: ((String) -> Void)?

    public init(options: EvaluatorServerOptions, jobID: String, baseModelPath: String, examples: [Wire.Example],
                adapters: [Wire.AdapterRef], logger: Logger, stop: StopSignal) {
        self.options = options; self.jobID = jobID; self.baseModelPath = baseModelPath
        self.examples = examples; self.adapters = adapters; self.logger = logger; self.stop = stop
    }

    /// Binds the socket; returns the real endpoint.
    @discardableResult
    public func start() throws -> String {
        let context = try ZMQContext()
        let socket = try ZMQSocket.router(context: context)
        try socket.setSendTimeout(milliseconds: Int32(clamping: max(100, options.heartbeatInterval.wholeMilliseconds)))
        // Answers are small (sums and per-example numbers): 64 MiB bounds what a hostile peer can make us buffer.
        try socket.setMaxMessageSize(64 << 20)
        do {
            try socket.bind(options.bind)
        } catch {
            throw CoordinatorError(.transport, "cannot bind \(options.bind): \(error)")
        }
        self.context = context
        self.socket = socket
        let endpoint = (try? socket.lastEndpoint()) ?? options.bind
        boundEndpoint = endpoint
        if let file = options.endpointFile { try AtomicFile.write(Array((endpoint + "\n").utf8), to: file) }
        logger.info("serving evaluators", metadata: ["endpoint": "\(endpoint)", "job.id": "\(jobID)"])
        lastEvaluatorSeen = .now
        return endpoint
    }

    /// Says goodbye to every evaluator and closes the socket; returns once the goodbyes have left (or the
    /// socket's linger, 200 ms, ran out), so an exiting coordinator does not drop them (`ZMQContext.terminate`).
    public func close(reason: String) {
        for peer in joinOrder { sendRaw(.disconnect(reason: reason), to: peer) }
        socket?.close()
        socket = nil
        context?.terminate()
        context = nil
        evaluators = [:]
        joinOrder = []
    }

    public var connectedEvaluators: Int { evaluators.count }

    // MARK: EvaluationBackend

    public func evaluate(_ jobs: [EvalJob]) throws -> [EvalAnswer] {
        guard socket != nil else { throw CoordinatorError(.transport, "evaluator server is not started") }
        var batch = Batch(jobs: jobs, firstRequestID: nextRequestID)
        nextRequestID += UInt64(jobs.count)
        for peer in joinOrder { evaluators[peer]?.busyWith = nil }
        while !batch.isComplete {
            if let signal = stop.signalNumber {
                throw CoordinatorError(.interrupted, "stopped by signal \(signal)")
            }
            try pump(&batch)
        }
        return batch.answers.map { $0! }
    }

    // MARK: loop

    private struct Batch {
        var jobs: [EvalJob]
        var firstRequestID: UInt64
        var pending: [Int]
        var attempts: [UInt32]
        var answers: [EvalAnswer?]
        var failure: AdaptError?
        init(jobs: [EvalJob], firstRequestID: UInt64) {
            self.jobs = jobs; self.firstRequestID = firstRequestID
            pending = Array(jobs.indices); attempts = Array(repeating: 0, count: jobs.count)
            answers = Array(repeating: nil, count: jobs.count)
        }
        var isComplete: Bool { !answers.contains { $0 == nil } }
        func index(of requestID: UInt64) -> Int? {
            requestID >= firstRequestID && requestID < firstRequestID + UInt64(jobs.count) ? Int(requestID - firstRequestID) : nil
        }
    }

    private func pump(_ batch: inout Batch) throws {
        guard let socket else { return }
        let pollMilliseconds = max(5, min(50, options.heartbeatInterval.wholeMilliseconds / 4))
        if try ZMQPoll.readable([socket], timeoutMilliseconds: pollMilliseconds).first == true {
            for _ in 0..<256 {
                guard let frames = try socket.receive(dontWait: true) else { break }
                try handle(frames, batch: &batch)
            }
        }
        let now = ContinuousClock.now
        for peer in joinOrder {
            guard let evaluator = evaluators[peer], now - evaluator.lastHeard > options.heartbeatInterval * options.liveness else { continue }
            logger.warning("evaluator missed its heartbeats; its request is requeued", metadata: ["peer": "\(peer)", "worker.id": "\(evaluator.workerID)"])
            remove(peer, batch: &batch, countsAgainstRequest: true)
            onEvaluatorLost?(evaluator.workerID)
        }
        for peer in joinOrder where evaluators[peer]?.busyWith == nil && !batch.pending.isEmpty {
            let index = batch.pending.removeFirst()
            batch.attempts[index] += 1
            let job = batch.jobs[index]
            let request = Wire.EvalRequest(
                jobID: jobID, requestID: batch.firstRequestID + UInt64(index), attempt: batch.attempts[index], kind: Self.kind(job.mode),
                adapters: job.adapters.map { adapters[$0] }, modules: job.modules, coefficients: job.coefficients,
                examples: job.exampleIDs.map { examples[$0] })
            evaluators[peer]?.busyWith = index
            if !send(.evalRequest(request), to: peer) { remove(peer, batch: &batch, countsAgainstRequest: false) }
        }
        for peer in joinOrder {
            guard let evaluator = evaluators[peer], now - evaluator.lastSent >= options.heartbeatInterval else { continue }
            heartbeatSequence += 1
            send(.heartbeat(sequence: heartbeatSequence), to: peer)
        }
        if evaluators.isEmpty {
            if now - lastEvaluatorSeen > options.noEvaluatorTimeout {
                throw CoordinatorError(.taskFailed, "no evaluator connected to \(boundEndpoint ?? options.bind) for \(options.noEvaluatorTimeout)"
                    + (lastRejection.map { "; the last one was refused: \($0)" } ?? ""))
            }
        } else {
            lastEvaluatorSeen = now
        }
        if let failure = batch.failure { throw failure }
        try onTick?()
    }

    private func handle(_ frames: [[UInt8]], batch: inout Batch) throws {
        guard frames.count == 2 else {
            logger.warning("dropped message with unexpected frame count", metadata: ["frames": "\(frames.count)"])
            return
        }
        let peer = PeerID(frames[0])
        let decoded: (version: UInt32, message: WireMessage)
        do {
            decoded = try WireCodec.decode(frames[1])
        } catch {
            logger.warning("dropped malformed message", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return
        }
        guard decoded.version == Wire.protocolVersion else {
            let reason = "protocol version \(decoded.version) is not supported; this coordinator speaks \(Wire.protocolVersion)"
            logger.warning("rejected peer with wrong protocol version", metadata: ["peer": "\(peer)", "version": "\(decoded.version)"])
            if case .hello = decoded.message {
                lastRejection = reason
                // Stamped with the peer's version: a peer of another version drops envelopes of ours.
                sendRaw(.reject(reason: reason), to: peer, protocolVersion: decoded.version)
            }
            return
        }
        let now = ContinuousClock.now
        if case .hello(let hello) = decoded.message {
            admit(hello, peer: peer, now: now, batch: &batch)
            return
        }
        guard evaluators[peer] != nil else {
            logger.warning("dropped message from unknown peer", metadata: ["peer": "\(peer)", "message": "\(decoded.message.kindName)"])
            return
        }
        evaluators[peer]?.lastHeard = now
        switch decoded.message {
        case .heartbeat:
            break
        case .evalResult(let result):
            accept(result, from: peer, batch: &batch)
        case .evalFailed(let failed):
            guard let index = held(by: peer, requestID: failed.requestID, attempt: failed.attempt, batch: batch) else {
                logger.warning("dropped failure for a request the evaluator does not hold", metadata: ["peer": "\(peer)", "request.id": "\(failed.requestID)"])
                return
            }
            evaluators[peer]?.busyWith = nil
            let name = evaluators[peer]?.workerID ?? "\(peer)"
            guard failed.retryable, batch.attempts[index] < UInt32(options.maxAttempts) else {
                throw AdaptError("evaluator \(name): \(failed.error)")
            }
            logger.warning("evaluator failed a request; retrying", metadata: ["peer": "\(peer)", "error": "\(failed.error)"])
            retries += 1
            batch.pending.insert(index, at: 0)
        case .disconnect(let reason):
            logger.info("evaluator left", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
            remove(peer, batch: &batch, countsAgainstRequest: false)
        default:
            logger.warning("dropped message an evaluator must not send", metadata: ["peer": "\(peer)", "message": "\(decoded.message.kindName)"])
        }
    }

    private func admit(_ hello: Wire.Hello, peer: PeerID, now: ContinuousClock.Instant, batch: inout Batch) {
        guard hello.role == .evaluator else {
            let reason = "this coordinator runs adapt/eval and serves evaluators (role evaluator); a peer of role \(hello.role) cannot join"
            logger.warning("rejected peer of another role", metadata: ["peer": "\(peer)", "role": "\(hello.role)"])
            lastRejection = reason
            sendRaw(.reject(reason: reason), to: peer)
            return
        }
        if evaluators[peer] != nil {
            logger.warning("evaluator said hello again; its request is requeued", metadata: ["peer": "\(peer)"])
            remove(peer, batch: &batch, countsAgainstRequest: false)
        }
        evaluators[peer] = Evaluator(workerID: hello.workerID, lastHeard: now, lastSent: now, busyWith: nil)
        joinOrder.append(peer)
        logger.info("evaluator joined", metadata: ["peer": "\(peer)", "worker.id": "\(hello.workerID)", "host": "\(hello.hostname)",
                                                   "pid": "\(hello.pid)", "device": "\(hello.device)", "dtype": "\(hello.dtype)"])
        send(.welcome(Wire.Welcome(jobID: jobID, heartbeatIntervalMilliseconds: UInt32(clamping: options.heartbeatInterval.wholeMilliseconds),
                                   heartbeatLiveness: UInt32(clamping: options.liveness), baseModelPath: baseModelPath)), to: peer)
    }

    private func held(by peer: PeerID, requestID: UInt64, attempt: UInt32, batch: Batch) -> Int? {
        guard let index = batch.index(of: requestID), evaluators[peer]?.busyWith == index, batch.attempts[index] == attempt else { return nil }
        return index
    }

    private func accept(_ result: Wire.EvalResult, from peer: PeerID, batch: inout Batch) {
        guard let index = held(by: peer, requestID: result.requestID, attempt: result.attempt, batch: batch) else {
            logger.warning("dropped answer for a request the evaluator does not hold", metadata: ["peer": "\(peer)", "request.id": "\(result.requestID)"])
            return
        }
        evaluators[peer]?.busyWith = nil
        let job = batch.jobs[index]
        let problem: String?
        if result.exampleIDs != job.exampleIDs.map({ UInt32($0) }) {
            problem = "answered examples \(result.exampleIDs), asked \(job.exampleIDs)"
        } else if job.mode == .gradient && result.gradient.count != job.coefficients.count {
            problem = "gradient has \(result.gradient.count) values, expected \(job.coefficients.count)"
        } else if job.mode == .lossAndAccuracy && result.exampleCorrect.count != job.exampleIDs.count {
            problem = "accuracy flags missing"
        } else if !result.lossSum.isFinite || result.gradient.contains(where: { !$0.isFinite }) {
            problem = "non-finite loss or gradient"
        } else {
            problem = nil
        }
        if let problem {
            logger.warning("answer rejected; request requeued", metadata: ["peer": "\(peer)", "request.id": "\(result.requestID)", "error": "\(problem)"])
            retries += 1
            batch.pending.insert(index, at: 0)
            return
        }
        batch.answers[index] = EvalAnswer(
            lossSum: result.lossSum, tokenCount: Int(result.tokenCount), exampleLosses: result.exampleLosses,
            exampleTokens: result.exampleTokens.map(Int.init), exampleCorrect: result.exampleCorrect,
            gradient: result.gradient, seconds: result.seconds)
        requestsAnswered += 1
        evaluatorSeconds += result.seconds
    }

    private func remove(_ peer: PeerID, batch: inout Batch, countsAgainstRequest: Bool) {
        if let index = evaluators[peer]?.busyWith, batch.answers[index] == nil {
            if !countsAgainstRequest { batch.attempts[index] = max(0, batch.attempts[index] - 1) }
            if batch.attempts[index] >= UInt32(options.maxAttempts) {
                batch.failure = AdaptError("request \(batch.firstRequestID + UInt64(index)) was lost with \(batch.attempts[index]) evaluators in a row (maximum \(options.maxAttempts) attempts)")
            }
            retries += 1
            batch.pending.insert(index, at: 0)
        }
        evaluators[peer] = nil
        joinOrder.removeAll { $0 == peer }
    }

    @discardableResult
    private func send(_ message: WireMessage, to peer: PeerID) -> Bool {
        do {
            try socket?.send([peer.bytes, WireCodec.encode(message)])
            evaluators[peer]?.lastSent = .now
            return true
        } catch {
            logger.warning("evaluator unreachable", metadata: ["peer": "\(peer)", "error": "\(error)"])
            return false
        }
    }

    private func sendRaw(_ message: WireMessage, to peer: PeerID, protocolVersion: UInt32 = Wire.protocolVersion) {
        do {
            try socket?.send([peer.bytes, WireCodec.encode(message, protocolVersion: protocolVersion)], dontWait: true)
        } catch {
            logger.debug("could not answer peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    private static func kind(_ mode: EvalMode) -> Wire.EvalKind {
        switch mode {
        case .loss: .loss
        case .lossAndAccuracy: .lossAndAccuracy
        case .gradient: .gradient
        }
    }
}
