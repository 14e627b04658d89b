import AdapterIO
import Foundation
import Logging
import Kernels
import MergeEngine
import Testing
@testable import WireProtocol
@testable import Worker

/// Two small synthetic adapters (one F32, one BF16) for one module, written with the safetensors writer into a
/// per-test directory, and the plan that references them.
private struct SyntheticModule {
    static let name = "base_model.model.layers.0.self_attn.q_proj"
    let directory: String
    let plan: ModulePlan

    init(outFeatures: Int = 12, inFeatures: Int = 10, ranks: [Int] = [3, 2]) throws {
        directory = NSTemporaryDirectory() + "brickyard-worker-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var sources: [ModuleSource] = []
        for (index, rank) in ranks.enumerated() {
            let dtype: DType = index % 2 == 0 ? .f32 : .bf16
            let path = "\(directory)/adapter\(index).safetensors"
            let a = (0..<(rank * inFeatures)).map { Float(($0 * 7 + index * 3) % 11) / 8 - 0.5 }
            let b = (0..<(outFeatures * rank)).map { Float(($0 * 5 + index) % 13) / 16 - 0.375 }
            try SafetensorsWriter.write(path: path, tensors: [
                (TensorDeclaration(name: "\(Self.name).lora_A.weight", dtype: dtype, shape: [rank, inFeatures]), a),
                (TensorDeclaration(name: "\(Self.name).lora_B.weight", dtype: dtype, shape: [outFeatures, rank]), b),
            ])
            let file = try SafetensorsFile(path: path)
            let info = LoraModuleInfo(name: Self.name, rank: rank, alpha: Double(2 * rank), scaling: 2,
                                      inFeatures: inFeatures, outFeatures: outFeatures,
                                      a: try file.reference("\(Self.name).lora_A.weight"),
                                      b: try file.reference("\(Self.name).lora_B.weight"))
            sources.append(ModuleSource(adapterIndex: index, module: info, coefficient: index == 0 ? 0.75 : -1.5))
        }
        plan = ModulePlan(name: Self.name, outFeatures: outFeatures, inFeatures: inFeatures, sources: sources,
                          seed: ModuleSeed.derive(jobSeed: 7, module: Self.name))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// Stored bytes of every factor, as a coordinator sends them inline.
    func storedFactors() throws -> [(a: [UInt8], b: [UInt8])] {
        try plan.sources.map { source in
            let file = try SafetensorsFile(path: source.module.a.path)
            return (try file.withRawBytes("\(Self.name).lora_A.weight") { Array($0) },
                    try file.withRawBytes("\(Self.name).lora_B.weight") { Array($0) })
        }
    }
}

/// Runs a `Worker` on its own thread (as the CLI's main thread would) and collects its exit status.
private final class WorkerThread: @unchecked Sendable {
    let stop = WorkerStopFlag()
    private let lock = NSLock()
    private var status: Int32?

    init(_ configuration: WorkerConfiguration) {
        let stop = self.stop
        let thread = Thread { [self] in
            var logger = Logger(label: "test.worker")
            logger.logLevel = .critical
            let status = Worker(configuration: configuration, logger: logger, stopFlag: stop).run()
            lock.withLock { self.status = status }
        }
        thread.start()
    }

    /// The exit status, waiting up to `seconds`; nil if still running.
    func exitStatus(within seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let status = lock.withLock({ status }) { return status }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return lock.withLock { status }
    }
}

/// A scripted coordinator: a ROUTER on an ephemeral loopback port that answers the worker's heartbeats while the
/// test waits for the next interesting message.
private final class FakeCoordinator {
    let context: ZMQContext
    let router: ZMQSocket
    let endpoint: String
    private(set) var heartbeatsReceived = 0
    var answersHeartbeats = true

    init() throws {
        context = try ZMQContext()
        router = try ZMQSocket.router(context: context, lingerMilliseconds: 0)
        try router.bind("tcp://127.0.0.1:*")
        endpoint = try router.lastEndpoint()
    }

    /// The next non-heartbeat message, or nil after `seconds`.
    func next(within seconds: Double = 10) throws -> (peer: [UInt8], message: WireMessage)? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let frames = try router.receive(timeoutMilliseconds: 20), let routed = RoutedFrames(frames) else { continue }
            let message = try WireCodec.decode(routed.payload).message
            if case .heartbeat(let sequence) = message {
                heartbeatsReceived += 1
                // A heartbeat from a connection the worker has since replaced is dropped, as the coordinator does
                // (a reconnection shows as the next message, a hello, which the test's own checks catch).
                do {
                    if answersHeartbeats { try router.send(.heartbeat(sequence: sequence), to: routed.peer) }
                } catch let error as ZMQError where error.kind == .hostUnreachable {}
                continue
            }
            return (routed.peer, message)
        }
        return nil
    }

    /// Waits for a Hello and welcomes it; returns the peer identity and the hello.
    /// The default liveness (10 s of silence) is for tests not about liveness: a loaded machine can stall this
    /// thread for seconds between two `next` calls, and a worker that reconnects meanwhile has a new identity.
    func admit(intervalMilliseconds: UInt32 = 100, liveness: UInt32 = 100) throws -> (peer: [UInt8], hello: Wire.Hello) {
        let first = try #require(try next())
        guard case .hello(let hello) = first.message else {
            Issue.record("expected hello, got \(first.message)")
            throw WireError(.invalidField, "no hello")
        }
        try router.send(.welcome(Wire.Welcome(jobID: "job", heartbeatIntervalMilliseconds: intervalMilliseconds,
                                              heartbeatLiveness: liveness)), to: first.peer)
        return (first.peer, hello)
    }

    /// Collects result chunks until TaskDone or TaskFailed.
    func collectResult() throws -> (body: [UInt8]?, done: Wire.TaskDone?, failed: Wire.TaskFailed?) {
        var reassembler = ChunkReassembler(maxTotalBytes: 1 << 24)
        while let (_, message) = try next() {
            switch message {
            case .resultChunk(let chunk): _ = try reassembler.add(chunk)
            case .taskDone(let done):
                return (try reassembler.assembled(expectedBytes: done.resultBytes, expectedCRC32C: done.resultCRC32C), done, nil)
            case .taskFailed(let failed): return (nil, nil, failed)
            default: Issue.record("unexpected \(message)")
            }
        }
        return (nil, nil, nil)
    }
}

private func configuration(_ endpoint: String, faults: WorkerFaults = .none) -> WorkerConfiguration {
    WorkerConfiguration(endpoint: endpoint, workerID: "test-worker", heartbeatIntervalMilliseconds: 100,
                        heartbeatLiveness: 20, reconnectInitialDelayMilliseconds: 20, reconnectMaxDelayMilliseconds: 100,
                        faults: faults)
}

@Suite("Worker against a scripted coordinator", .serialized)
struct WorkerTests {
    @Test("hello → welcome → task → result chunks equal ModuleMerger.merge's output, in both input modes",
          arguments: [Wire.InputMode.shared, .inline])
    func computesTask(mode: Wire.InputMode) throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let spec = MergeSpec(method: .cat, rank: 0)
        let expected = try ModuleMerger.merge(module.plan.loadInput(), spec: spec, seed: module.plan.seed)

        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, hello) = try coordinator.admit()
        #expect(hello.workerID == "test-worker")
        #expect(hello.version == BrickyardVersion.build)
        #expect(hello.pid == UInt32(ProcessInfo.processInfo.processIdentifier))

        // Small chunks so the result spans several.
        let task = try Wire.Task(module: module.plan, spec: spec, jobID: "job", taskID: 3, attempt: 2, inputMode: mode,
                                 resultChunkBytes: 64)
        try coordinator.router.send(.task(task), to: peer)
        if mode == .inline {
            for (index, factors) in try module.storedFactors().enumerated() {
                for (factor, bytes) in [(UInt32(0), factors.a), (1, factors.b)] {
                    for chunk in Chunking.inputChunks(of: bytes, taskID: 3, attempt: 2, inputIndex: UInt32(index),
                                                      factor: factor, maxChunkBytes: 16) {
                        try coordinator.router.send(.inputChunk(chunk), to: peer)
                    }
                }
            }
        }
        let (body, done, failed) = try coordinator.collectResult()
        #expect(failed == nil)
        let finished = try #require(done)
        #expect(finished.taskID == 3 && finished.attempt == 2)
        #expect(Int(finished.outRank) == expected.rank)
        #expect(try SpecJSONTestSupport.stats(finished.statsJSON) == expected.stats)
        #expect(try #require(body) == ResultBody.encode(expected))

        try coordinator.router.send(.disconnect(reason: "job done"), to: peer)
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("heartbeats keep flowing while a long task computes, and the connection survives it")
    func heartbeatsWhileComputing() throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint, faults: WorkerFaults(slowTaskMilliseconds: 800)))
        // Liveness 5 s: the check is the heartbeat count below, not how fast this thread answers on a loaded machine.
        let (peer, _) = try coordinator.admit(intervalMilliseconds: 25, liveness: 200)
        let task = try Wire.Task(module: module.plan, spec: MergeSpec(method: .cat, rank: 0), jobID: "job", taskID: 1,
                                 attempt: 1, inputMode: .shared)
        let before = coordinator.heartbeatsReceived
        try coordinator.router.send(.task(task), to: peer)
        let (body, done, _) = try coordinator.collectResult()
        #expect(done != nil && body != nil)
        // 800 ms at one heartbeat per 25 ms: well over 8 even on a loaded machine; a worker blocked in the
        // computation would send none.
        #expect(coordinator.heartbeatsReceived - before >= 8)
        worker.stop.request(reason: "test over")
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("a reject ends the worker with the rejected status")
    func rejected() throws {
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let first = try #require(try coordinator.next())
        guard case .hello = first.message else { Issue.record("expected hello"); return }
        try coordinator.router.send(.reject(reason: "protocol version 1 is not 2"), to: first.peer)
        #expect(worker.exitStatus(within: 10) == WorkerExit.rejected)
    }

    @Test("garbage, wrong-version envelopes and stray input chunks from the coordinator are dropped")
    func ignoresGarbage() throws {
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, _) = try coordinator.admit()
        try coordinator.router.send([peer, [0xFF, 0x00, 0x13]])
        try coordinator.router.send([peer, WireCodec.encode(.disconnect(reason: "v9"), protocolVersion: 9)])
        try coordinator.router.send(.inputChunk(Wire.InputChunk(taskID: 99, attempt: 1, inputIndex: 0, factor: 0, sequence: 0,
                                                                total: 1, payload: [1], crc32c: CRC32C.checksum([1]))), to: peer)
        // Still alive and heartbeating: nothing but heartbeats arrives, and the worker has not exited.
        #expect(try coordinator.next(within: 0.5) == nil)
        #expect(coordinator.heartbeatsReceived > 0)
        #expect(worker.exitStatus(within: 0) == nil)
        worker.stop.request(reason: "test over")
        let goodbye = try #require(try coordinator.next())
        guard case .disconnect = goodbye.message else { Issue.record("expected disconnect, got \(goodbye.message)"); return }
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("a silent coordinator is detected: the worker reconnects with a new identity and says hello again")
    func reconnectsAfterSilence() throws {
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (firstPeer, _) = try coordinator.admit(intervalMilliseconds: 50, liveness: 3)
        coordinator.answersHeartbeats = false
        let second = try #require(try coordinator.next(within: 10))
        guard case .hello(let hello) = second.message else { Issue.record("expected hello, got \(second.message)"); return }
        #expect(hello.workerID == "test-worker")
        #expect(second.peer != firstPeer)
        #expect(coordinator.heartbeatsReceived >= 2)
        worker.stop.request(reason: "test over")
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("inconsistent tasks fail without retry; injected failures fail with retry", arguments: [false, true])
    func failures(injected: Bool) throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint, faults: WorkerFaults(failTasks: injected)))
        let (peer, _) = try coordinator.admit()
        var task = try Wire.Task(module: module.plan, spec: MergeSpec(method: .cat, rank: 0), jobID: "job", taskID: 1,
                                 attempt: 1, inputMode: .shared)
        if !injected { task.inputs[1].bLength += 2 }
        try coordinator.router.send(.task(task), to: peer)
        let (_, done, failed) = try coordinator.collectResult()
        #expect(done == nil)
        let failure = try #require(failed)
        #expect(failure.retryable == injected)
        #expect(failure.error.contains(injected ? "injected" : "b_length"))
        worker.stop.request(reason: "test over")
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("a file that vanished after planning is a retryable failure naming the file")
    func missingFile() throws {
        let module = try SyntheticModule()
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, _) = try coordinator.admit()
        let task = try Wire.Task(module: module.plan, spec: MergeSpec(method: .cat, rank: 0), jobID: "job", taskID: 1,
                                 attempt: 1, inputMode: .shared)
        module.remove()
        try coordinator.router.send(.task(task), to: peer)
        let failure = try #require(try coordinator.collectResult().failed)
        #expect(failure.retryable)
        #expect(failure.error.contains("adapter0.safetensors"))
        worker.stop.request(reason: "test over")
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("test-only hang-after-tasks: the worker stops heartbeating but stays alive")
    func hangs() throws {
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint, faults: WorkerFaults(hangAfterTasks: 0)))
        _ = try coordinator.admit()
        #expect(try coordinator.next(within: 0.5) == nil)
        #expect(coordinator.heartbeatsReceived == 0)
        #expect(worker.exitStatus(within: 0) == nil)
        worker.stop.request(reason: "test over")
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("the worker gives up after maxFailedConnections connections without a welcome")
    func givesUp() throws {
        let coordinator = try FakeCoordinator()
        var settings = configuration(coordinator.endpoint)
        settings.heartbeatIntervalMilliseconds = 20
        settings.heartbeatLiveness = 2
        settings.maxFailedConnections = 2
        let worker = WorkerThread(settings)
        var hellos = 0
        while let received = try coordinator.next(within: 1) {
            if case .hello = received.message { hellos += 1 }
        }
        #expect(hellos == 2)
        #expect(worker.exitStatus(within: 10) == WorkerExit.coordinatorUnreachable)
    }
}

@Suite("Test-only fault specification")
struct WorkerFaultsTests {
    @Test("parses the environment syntax")
    func parses() throws {
        let faults = try WorkerFaults(specification: "fail-tasks, hang-after-tasks=2,die-in-task,once=/tmp/x,slow-tasks=5")
        #expect(faults == WorkerFaults(failTasks: true, hangAfterTasks: 2, dieInTask: true, onceMarkerPath: "/tmp/x",
                                       slowTaskMilliseconds: 5))
        #expect(try WorkerFaults(specification: "") == .none)
    }

    @Test("rejects unknown items", arguments: ["explode", "hang-after-tasks", "hang-after-tasks=-1", "once", "slow-tasks=x"])
    func rejects(specification: String) {
        #expect(throws: WorkerFaultsError.self) { try WorkerFaults(specification: specification) }
    }
}

enum SpecJSONTestSupport {
    static func stats(_ json: String) throws -> ModuleStats {
        try JSONDecoder().decode(ModuleStats.self, from: Data(json.utf8))
    }
}

@Suite("Worker: k-means block tasks", .serialized)
struct WorkerBlockTaskTests {
    /// The synthetic module split into its two adapters, as a split plan's blocks.
    private static func splitPlan(_ module: SyntheticModule) -> ModulePlan {
        var plan = module.plan
        plan.blocks = [ModuleBlock(sources: 0..<1, unitIDOffset: 0), ModuleBlock(sources: 1..<2, unitIDOffset: 3)]
        return plan
    }

    @Test("a block round's result is BlockKMeans.compute on the block; bad block tasks fail and the worker keeps serving")
    func blockRoundsAndBadBlockTasks() throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let plan = Self.splitPlan(module)
        let spec = MergeSpec(method: .lego, rank: 2)
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, _) = try coordinator.admit()

        // Centers of the wrong size: refused (not retryable), nothing computed.
        let dimension = plan.outFeatures + plan.inFeatures
        var bad = try Wire.KMeansBlockTask(module: plan, blockIndex: 1, spec: spec, jobID: "job", taskID: 1, attempt: 1,
                                           request: BlockRoundRequest(kind: .lloyd, round: 4,
                                                                      centers: [Float](repeating: 1, count: 2 * dimension),
                                                                      centerCount: 2, farthest: 1))
        bad.centers.removeLast(4)
        try coordinator.router.send(.kmeansBlockTask(bad), to: peer)
        let (_, _, failedCenters) = try coordinator.collectResult()
        #expect(failedCenters?.taskID == 1 && failedCenters?.retryable == false)

        // A whole-module kind inside a block task, and a round kind sent as a plain task: both refused.
        var wrongKind = bad
        wrongKind.task.kind = .mergeModule
        wrongKind.task.taskID = 2
        try coordinator.router.send(.kmeansBlockTask(wrongKind), to: peer)
        #expect(try coordinator.collectResult().failed?.taskID == 2)
        var plain = try Wire.Task(module: module.plan, spec: spec, jobID: "job", taskID: 3, attempt: 1, inputMode: .shared)
        plain.kind = .kmeansLloyd
        try coordinator.router.send(.task(plain), to: peer)
        #expect(try coordinator.collectResult().failed?.taskID == 3)
        // A draw round whose module cost φ is negative or not finite: refused, naming the cost.
        for (taskID, cost) in [(UInt64(6), -1.0), (7, Double.nan), (8, Double.infinity)] {
            var badCost = try Wire.KMeansBlockTask(module: plan, blockIndex: 1, spec: spec, jobID: "job", taskID: taskID,
                                                   attempt: 1, request: BlockRoundRequest(kind: .draw, round: 1,
                                                                                          oversampling: 4, cost: 1))
            badCost.cost = cost
            try coordinator.router.send(.kmeansBlockTask(badCost), to: peer)
            let failed = try coordinator.collectResult().failed
            #expect(failed?.taskID == taskID && failed?.retryable == false && failed?.error.contains("cost") == true,
                    "\(String(describing: failed))")
        }
        // Garbage frames are dropped.
        try coordinator.router.send([peer, [0x0a, 0xff, 0xff]])

        // A valid round: the body is the block's partial, bit for bit.
        let centers = (0..<(2 * dimension)).map { Float(($0 * 3) % 7) - 3 }
        let request = BlockRoundRequest(kind: .lloyd, round: 4, centers: centers, centerCount: 2, farthest: 1)
        let good = try Wire.KMeansBlockTask(module: plan, blockIndex: 1, spec: spec, jobID: "job", taskID: 4, attempt: 1,
                                            request: request)
        for taskID in [UInt64(4), 5] {  // the second time the block comes from the worker's cache
            var message = good
            message.task.taskID = taskID
            try coordinator.router.send(.kmeansBlockTask(message), to: peer)
            let (body, done, failed) = try coordinator.collectResult()
            #expect(failed == nil, "\(String(describing: failed))")
            #expect(done?.statsJSON == (taskID == 4 ? "{\"cached\":false}" : "{\"cached\":true}"))
            let block = try SplitLego.unitBlock(try SplitLego.blockPlan(plan, block: plan.blocks![1]).loadInput(), spec: spec,
                                                unitIDOffset: 3)
            #expect(block.ids == [3, 4])
            let expected = try BlockKMeans.compute(request, block: block, seed: plan.seed)
            #expect(try BlockPartial.decode(try #require(body)) == expected)
        }
        try coordinator.router.send(.disconnect(reason: "job done"), to: peer)
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }
    @Test("inline block tasks: inputs streamed once then the cached block; a block not held fails retryable; seeding state travels")
    func inlineBlockTasks() throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let plan = Self.splitPlan(module)
        let spec = MergeSpec(method: .lego, rank: 2)
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, _) = try coordinator.admit()
        let block = try SplitLego.unitBlock(try SplitLego.blockPlan(plan, block: plan.blocks![1]).loadInput(), spec: spec,
                                            unitIDOffset: 3)
        let dimension = block.dimension
        let first = BlockRoundRequest(kind: .oversample, round: 1, centers: Array(block.vectors[0..<dimension]),
                                      centerCount: 1, oversampling: 4)
        func task(_ id: UInt64, _ request: BlockRoundRequest, inputsFollow: Bool) throws -> Wire.KMeansBlockTask {
            try Wire.KMeansBlockTask(module: plan, blockIndex: 1, spec: spec, jobID: "job", taskID: id, attempt: 1,
                                     request: request, inputMode: .inline, inputsFollow: inputsFollow)
        }
        // Not held and no inputs: fails, retryable (the coordinator resends with the inputs).
        try coordinator.router.send(.kmeansBlockTask(try task(1, first, inputsFollow: false)), to: peer)
        let (_, _, missing) = try coordinator.collectResult()
        #expect(missing?.taskID == 1 && missing?.retryable == true, "\(String(describing: missing))")
        // With its inputs (block 1 = the module's second adapter, its input 0).
        try coordinator.router.send(.kmeansBlockTask(try task(2, first, inputsFollow: true)), to: peer)
        let stored = try module.storedFactors()[1]
        for (factor, bytes) in [(UInt32(0), stored.a), (1, stored.b)] {
            for chunk in Chunking.inputChunks(of: bytes, taskID: 2, attempt: 1, inputIndex: 0, factor: factor, maxChunkBytes: 16) {
                try coordinator.router.send(.inputChunk(chunk), to: peer)
            }
        }
        let (body, done, failed) = try coordinator.collectResult()
        #expect(failed == nil, "\(String(describing: failed))")
        #expect(done?.statsJSON == "{\"cached\":false}")
        let partial = try BlockPartial.decode(try #require(body))
        #expect(partial == (try BlockKMeans.compute(first, block: block, seed: plan.seed)))
        // The next seeding round: only the new candidate and the block's carried state travel; the block is cached.
        let second = BlockRoundRequest(kind: .oversample, round: 2, centers: Array(block.vectors[dimension..<(2 * dimension)]),
                                       centerCount: 1, oversampling: 4, centerOffset: 1, nearest: partial.nearest)
        try coordinator.router.send(.kmeansBlockTask(try task(3, second, inputsFollow: false)), to: peer)
        let (body2, done2, failed2) = try coordinator.collectResult()
        #expect(failed2 == nil, "\(String(describing: failed2))")
        #expect(done2?.statsJSON == "{\"cached\":true}")
        let partial2 = try BlockPartial.decode(try #require(body2))
        #expect(partial2 == (try BlockKMeans.compute(second, block: block, seed: plan.seed)))
        // The first round's draws: the module's cost φ and the carried state travel; the draws equal the in-process
        // ones (φ below the block's own cost, as when other blocks are cheaper, so some unit is drawn).
        try #require(partial.cost > 0)
        let draw = BlockRoundRequest(kind: .draw, round: 1, oversampling: 4, centerOffset: 1, nearest: partial.nearest,
                                     cost: partial.cost / 2)
        try coordinator.router.send(.kmeansBlockTask(try task(4, draw, inputsFollow: false)), to: peer)
        let (body3, _, failed3) = try coordinator.collectResult()
        #expect(failed3 == nil, "\(String(describing: failed3))")
        let drawn = try BlockPartial.decode(try #require(body3))
        #expect(drawn.kind == .draw && !drawn.units.isEmpty)
        #expect(drawn == (try BlockKMeans.compute(draw, block: block, seed: plan.seed)))
        try coordinator.router.send(.disconnect(reason: "job done"), to: peer)
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }
}

@Suite("Worker: split round payloads", .serialized)
struct WorkerRoundPayloadTests {
    private static func splitPlan(_ module: SyntheticModule) -> ModulePlan {
        var plan = module.plan
        plan.blocks = [ModuleBlock(sources: 0..<1, unitIDOffset: 0), ModuleBlock(sources: 1..<2, unitIDOffset: 3)]
        return plan
    }

    private static func payload(_ id: UInt64, track: UInt32, centers: [Float], module: String = SyntheticModule.name) -> Wire.RoundPayload {
        var bytes: [UInt8] = []
        FloatBytes.appendLittleEndian(centers, to: &bytes)
        return Wire.RoundPayload(payloadID: id, module: module, track: track, centers: bytes, crc32c: CRC32C.checksum(bytes))
    }

    @Test("block tasks that refer to a round payload compute with its centers; a payload not held (unknown, replaced, other bytes) fails retryable naming it")
    func payloadReferences() throws {
        let module = try SyntheticModule()
        defer { module.remove() }
        let plan = Self.splitPlan(module)
        let spec = MergeSpec(method: .lego, rank: 2)
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let (peer, _) = try coordinator.admit()
        let dimension = plan.outFeatures + plan.inFeatures
        let centers = (0..<(2 * dimension)).map { Float(($0 * 3) % 7) - 3 }
        let request = BlockRoundRequest(kind: .lloyd, round: 4, centers: centers, centerCount: 2, farthest: 1)
        let payload = Self.payload(7, track: 0, centers: centers)
        func task(_ id: UInt64, block: Int, payloadID: UInt64 = 7, crc: UInt32? = nil) throws -> Wire.KMeansBlockTask {
            try Wire.KMeansBlockTask(module: plan, blockIndex: block, spec: spec, jobID: "job", taskID: id, attempt: 1,
                                     request: request, payload: (payloadID, crc ?? payload.crc32c))
        }
        let referring = try task(1, block: 0)
        #expect(referring.centers.isEmpty && referring.payloadID == 7)

        // Before the payload arrives: not held. The failure names it, so the coordinator resends it.
        try coordinator.router.send(.kmeansBlockTask(referring), to: peer)
        let (_, _, missing) = try coordinator.collectResult()
        #expect(missing?.taskID == 1 && missing?.retryable == true && missing?.missingPayload == 7, "\(String(describing: missing))")
        #expect(missing?.error.contains("round payload 7") == true)

        // Sent once; both blocks' tasks use it: each result is BlockKMeans.compute with the payload's centers.
        try coordinator.router.send(.roundPayload(payload), to: peer)
        for (taskID, block) in [(UInt64(2), 0), (3, 1)] {
            try coordinator.router.send(.kmeansBlockTask(try task(taskID, block: block)), to: peer)
            let (body, _, failed) = try coordinator.collectResult()
            #expect(failed == nil, "\(String(describing: failed))")
            let units = try SplitLego.unitBlock(try SplitLego.blockPlan(plan, block: plan.blocks![block]).loadInput(),
                                                spec: spec, unitIDOffset: plan.blocks![block].unitIDOffset)
            #expect(try BlockPartial.decode(try #require(body)) == (try BlockKMeans.compute(request, block: units, seed: plan.seed)))
        }
        // The right id with other bytes (a CRC that does not match): not used.
        try coordinator.router.send(.kmeansBlockTask(try task(4, block: 0, crc: payload.crc32c ^ 1)), to: peer)
        #expect(try coordinator.collectResult().failed?.missingPayload == 7)
        // A payload whose bytes do not match its own CRC is dropped on arrival; the task that refers to it fails.
        var damaged = Self.payload(8, track: 1, centers: centers)
        damaged.centers[0] ^= 0xFF
        try coordinator.router.send(.roundPayload(damaged), to: peer)
        try coordinator.router.send(.kmeansBlockTask(try task(5, block: 0, payloadID: 8, crc: damaged.crc32c)), to: peer)
        #expect(try coordinator.collectResult().failed?.missingPayload == 8)
        // The track's next round replaces its payload: the old one is no longer held, the new one is.
        let newer = Self.payload(9, track: 0, centers: centers.map { $0 + 1 })
        try coordinator.router.send(.roundPayload(newer), to: peer)
        try coordinator.router.send(.kmeansBlockTask(try task(6, block: 0)), to: peer)
        #expect(try coordinator.collectResult().failed?.missingPayload == 7)
        try coordinator.router.send(.kmeansBlockTask(try task(7, block: 0, payloadID: 9, crc: newer.crc32c)), to: peer)
        let (newBody, _, newFailed) = try coordinator.collectResult()
        #expect(newFailed == nil && newBody != nil, "\(String(describing: newFailed))")
        try coordinator.router.send(.disconnect(reason: "job done"), to: peer)
        #expect(worker.exitStatus(within: 10) == WorkerExit.success)
    }

    @Test("a reject stamped with another protocol version ends the worker (rejected), naming both versions")
    func rejectOfAnotherVersion() throws {
        let coordinator = try FakeCoordinator()
        let worker = WorkerThread(configuration(coordinator.endpoint))
        let first = try #require(try coordinator.next())
        guard case .hello = first.message else { Issue.record("expected hello"); return }
        try coordinator.router.send([first.peer, WireCodec.encode(.reject(reason: "protocol version 2 is not supported; this coordinator speaks 1"),
                                                                  protocolVersion: 1)])
        #expect(worker.exitStatus(within: 10) == WorkerExit.rejected)
    }
}
