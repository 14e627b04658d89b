import Adaptive
import Coordinator
import Foundation
import Logging
import Testing
import WireProtocol
import BrickyardTestSupport

/// What the fake peers saw, shared with the test thread.
private final class PeerLog: @unchecked Sendable {
    // @unchecked: every access holds the lock.
    private let lock = NSLock()
    private var entries: [String] = []
    func add(_ entry: String) { lock.lock(); entries.append(entry); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return entries }
}

private func receive(_ socket: ZMQSocket, timeout: Int = 10_000) -> WireMessage? {
    let deadline = ContinuousClock.now + .milliseconds(timeout)
    while ContinuousClock.now < deadline {
        guard let frames = try? socket.receive(timeoutMilliseconds: 100), let frame = frames.first,
              let message = try? WireCodec.decode(frame).message else { continue }
        if case .heartbeat = message { continue }
        return message
    }
    return nil
}

/// A merge worker (must be refused), garbage, an evaluator that takes a request and leaves without answering,
/// and an honest evaluator that answers loss_sum = Σ example ids.
private func fakePeers(endpoint: String, log: PeerLog) {
    do {
        let context = try ZMQContext()
        let worker = try ZMQSocket.dealer(context: context, identity: Array("merge-worker".utf8))
        try worker.connect(endpoint)
        try worker.send(.hello(Wire.Hello(workerID: "w", version: "x", cores: 1, blasThreads: 1, pid: 1, hostname: "h")))
        if case .reject(let reason)? = receive(worker) { log.add("worker rejected: \(reason)") }
        worker.close()

        let garbage = try ZMQSocket.dealer(context: context, identity: Array("garbage".utf8))
        try garbage.connect(endpoint)
        try garbage.send([[0xFF, 0x13, 0x37]])
        garbage.close()

        let quitter = try ZMQSocket.dealer(context: context, identity: Array("quitter".utf8))
        try quitter.connect(endpoint)
        try quitter.send(.hello(Wire.Hello(workerID: "quitter", version: "0.1.0", cores: 1, blasThreads: 1, pid: 2, hostname: "h",
                                           role: .evaluator, device: "cpu", dtype: "float32")))
        if case .welcome(let welcome)? = receive(quitter) { log.add("welcome base=\(welcome.baseModelPath)") }
        if case .evalRequest(let request)? = receive(quitter) { log.add("quitter took \(request.requestID)") }
        try quitter.send(.disconnect(reason: "leaving mid-request"))
        quitter.close()

        let honest = try ZMQSocket.dealer(context: context, identity: Array("honest".utf8))
        try honest.connect(endpoint)
        try honest.send(.hello(Wire.Hello(workerID: "honest", version: "0.1.0", cores: 1, blasThreads: 1, pid: 3, hostname: "h",
                                          role: .evaluator, device: "cpu", dtype: "float32")))
        while let message = receive(honest) {
            switch message {
            case .evalRequest(let request):
                // A forged answer for a request nobody holds is dropped.
                try honest.send(.evalResult(Wire.EvalResult(requestID: request.requestID + 1000, attempt: 1, lossSum: -1, tokenCount: 1)))
                let ids = request.examples.map(\.id)
                try honest.send(.evalResult(Wire.EvalResult(
                    requestID: request.requestID, attempt: request.attempt, lossSum: Double(ids.reduce(0, +)), tokenCount: UInt64(ids.count),
                    exampleIDs: ids, exampleLosses: ids.map(Double.init), exampleTokens: ids.map { _ in 1 },
                    gradient: request.kind == .gradient ? request.coefficients.map { 2 * $0 } : [])))
                log.add("honest answered \(request.requestID)/\(request.attempt)")
            case .disconnect:
                log.add("honest dismissed")
                honest.close()
                return
            default:
                break
            }
        }
        honest.close()
    } catch {
        log.add("peer error: \(error)")
    }
}

@Suite("Evaluator server")
struct EvaluatorServerTests {
    @Test("refuses merge workers by role, drops garbage, requeues a departed evaluator's request, answers in job order")
    func protocolAndRequeue() throws {
        let examples = (0..<5).map { Wire.Example(id: UInt32($0), prompt: "p\($0)", completion: "c") }
        let server = EvaluatorServer(options: EvaluatorServerOptions(bind: "tcp://127.0.0.1:*", heartbeatInterval: .milliseconds(100),
                                                                     liveness: 50, noEvaluatorTimeout: .seconds(60)),
                                     jobID: "job", baseModelPath: "/models/base", examples: examples,
                                     adapters: [Wire.AdapterRef(path: "/a", contentHash: "h")], logger: Logger(label: "test"),
                                     stop: StopSignal())
        let endpoint = try server.start()
        let log = PeerLog()
        let thread = Thread { fakePeers(endpoint: endpoint, log: log) }
        thread.start()
        let jobs = [
            EvalJob(mode: .gradient, adapters: [0], modules: ["m"], coefficients: [0.5], exampleIDs: [0, 1, 2]),
            EvalJob(mode: .loss, adapters: [], modules: [], coefficients: [], exampleIDs: [3, 4]),
        ]
        let answers = try server.evaluate(jobs)
        server.close(reason: "test done")
        let deadline = Date().addingTimeInterval(10)
        while !log.all.contains("honest dismissed") && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(answers.map(\.lossSum) == [3, 7])
        #expect(answers[0].gradient == [1.0])
        #expect(answers.map(\.tokenCount) == [3, 2])
        let entries = log.all
        #expect(entries.contains { $0.hasPrefix("worker rejected:") && $0.contains("role evaluator") }, "\(entries)")
        #expect(entries.contains("welcome base=/models/base"), "\(entries)")
        #expect(entries.contains { $0.hasPrefix("quitter took") }, "\(entries)")
        #expect(entries.filter { $0.hasPrefix("honest answered") }.count == 2, "\(entries)")
        #expect(server.retries >= 1)
    }
}

@Suite("Merge coordinator and evaluators")
struct MergeCoordinatorRoleTests {
    @Test("a merge coordinator refuses an evaluator, naming the role it serves")
    func mergeCoordinatorRejectsEvaluator() throws {
        let binary = try #require(BrickyardTestSupport.BrickyardExecutable.path)
        let directory = NSTemporaryDirectory() + "role-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/peft-tiny/adapters").path
        try "method: cat\nadapters:\n  - glob: \(fixtures)/a_r8\n".write(toFile: directory + "/job.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["coordinator", directory + "/job.yaml", "--bind", "tcp://127.0.0.1:*", "--out", directory + "/out",
                             "--endpoint-file", directory + "/endpoint"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        var endpoint: String?
        let deadline = Date().addingTimeInterval(60)
        while endpoint == nil && Date() < deadline && process.isRunning {
            endpoint = (try? String(contentsOfFile: directory + "/endpoint", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if endpoint?.isEmpty == true { endpoint = nil }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let address = try #require(endpoint)
        let context = try ZMQContext()
        let evaluator = try ZMQSocket.dealer(context: context, identity: Array("an-evaluator".utf8))
        defer { evaluator.close() }
        try evaluator.connect(address)
        try evaluator.send(.hello(Wire.Hello(workerID: "e", version: "0.1.0", cores: 1, blasThreads: 1, pid: 1, hostname: "h",
                                             role: .evaluator, device: "cpu", dtype: "float32")))
        guard case .reject(let reason)? = receive(evaluator, timeout: 20_000) else {
            Issue.record("expected a reject")
            return
        }
        #expect(reason.contains("merge worker") && reason.contains("evaluator"), "\(reason)")
    }
}
