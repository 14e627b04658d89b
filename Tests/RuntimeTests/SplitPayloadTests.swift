import BrickyardTestSupport
import Foundation
import Testing
import WireProtocol

/// Split rounds send their shared centers once per worker and round (`RoundPayload`), and block tasks refer to
/// them: counted from the coordinator's log of real merges, with a worker that loses payloads, and with a peer of
/// another protocol version.
@Suite(.serialized) struct SplitPayloadTests {
    /// (payload id, peer) of every "round payload sent" line, and the transfer totals' fields.
    static func payloadSends(_ log: String) -> (sends: [(id: String, peer: String)], totals: [String: Int]) {
        var sends: [(String, String)] = []
        var totals: [String: Int] = [:]
        for line in log.split(separator: "\n") {
            let fields = Dictionary(line.split(separator: " ").compactMap { part -> (String, String)? in
                let pair = part.split(separator: "=", maxSplits: 1)
                return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
            }, uniquingKeysWith: { first, _ in first })
            if line.contains("round payload sent"), let id = fields["payload.id"], let peer = fields["peer"] {
                sends.append((id, peer))
            }
            if line.contains("transfer totals") {
                for (key, value) in fields { if let number = Int(value) { totals[key] = number } }
            }
        }
        return (sends, totals)
    }

    @Test("each round's centers go once to each worker that computes its blocks; block tasks refer to them; bytes as in process",
          arguments: [1, 2])
    func oncePerWorkerAndRound(workers: Int) throws {
        let h = try ProcessHarness("split-payload-\(workers)")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h)
        let merged = try h.expectMergeMatchesInProcess(job: job, workers: workers,
                                                       options: SplitModuleTests.fast + ["--log-level", "debug"])
        let (sends, totals) = Self.payloadSends(h.output(of: merged.merge))
        let references = try #require(totals["payload.references"])
        #expect(totals["round_payloads.sent"] == sends.count)
        // Never twice to the same worker connection.
        let pairs = sends.map { "\($0.id)@\($0.peer)" }
        #expect(Set(pairs).count == pairs.count, "\(pairs)")
        // At most once per worker: each payload went to at most `workers` connections.
        let perPayload = Dictionary(grouping: sends, by: \.id).mapValues(\.count)
        #expect(perPayload.values.allSatisfy { $0 <= workers }, "\(perPayload)")
        // The job's modules are split into 2–3 blocks, so blocks share what was sent.
        #expect(!sends.isEmpty && references > sends.count, "\(references) references, \(sends.count) sends")
        if workers == 1 { #expect(perPayload.values.allSatisfy { $0 == 1 }) }
    }

    @Test("a worker that loses a round payload fails the task naming it; the retry resends it and the job keeps the in-process bytes")
    func lostPayloadsAreResent() throws {
        let h = try ProcessHarness("split-payload-lost")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h)
        let reference = try h.inProcessReference(job: job)
        let out = h.path + "/out"
        // Each local worker ignores the first round payload it receives.
        let merge = try h.launch(["merge", job, "--out", out, "--workers", "2"] + SplitModuleTests.fast + ["--log-level", "debug"],
                                 environment: ["BRICKYARD_TEST_WORKER_FAULTS": "drop-payloads=1"])
        #expect(h.wait(merge, timeout: .seconds(120)) == 0, "\(h.output(of: merge))")
        #expect(h.adapterBytes(out) == reference)
        let log = h.output(of: merge)
        let misses = log.split(separator: "\n").filter { $0.contains("worker reported task failure") && $0.contains("is not held on this connection") }
        #expect((1...2).contains(misses.count), "\(log.suffix(4000))")
        // Every payload a worker reported missing was sent to it again.
        let (sends, _) = Self.payloadSends(log)
        #expect(Set(sends.map { "\($0.id)@\($0.peer)" }).count < sends.count, "\(sends)")
    }

    @Test("a worker of another protocol version gets a reject stamped with its own version, naming both versions")
    func otherVersionRejected() throws {
        let h = try ProcessHarness("split-payload-version")
        defer { h.finish() }
        let job = try SplitModuleTests.splitJob(h)
        let endpointFile = h.path + "/endpoint"
        let coordinator = try h.launch(["coordinator", job, "--bind", "tcp://127.0.0.1:*", "--out", h.path + "/out",
                                        "--endpoint-file", endpointFile] + SplitModuleTests.fast)
        defer { coordinator.terminate() }
        try #require(eventually(timeout: .seconds(30), interval: 0.05) { FileManager.default.fileExists(atPath: endpointFile) })
        let endpoint = try String(contentsOfFile: endpointFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let context = try ZMQContext()
        let old = try ZMQSocket.dealer(context: context, identity: Array("old-worker".utf8))
        defer { old.close() }
        try old.connect(endpoint)
        let hello = Wire.Hello(workerID: "old", version: "0.1.0", cores: 1, blasThreads: 1, pid: 1, hostname: "x")
        try old.send([WireCodec.encode(.hello(hello), protocolVersion: 1)])
        let answer = try #require(try old.receive(timeoutMilliseconds: 10_000))
        let decoded = try WireCodec.decode(try #require(answer.first))
        #expect(decoded.version == 1)
        guard case .reject(let reason) = decoded.message else { Issue.record("expected a reject, got \(decoded.message)"); return }
        #expect(reason.contains("protocol version 1 is not supported") && reason.contains("speaks \(Wire.protocolVersion)"), "\(reason)")
    }
}
