import Testing
@testable import WireProtocol

/// One value of every evaluator message (and each enum case), for round trips.
private let evalMessages: [WireMessage] = [
    .hello(Wire.Hello(workerID: "eval-1", version: "0.1.0", cores: 2, blasThreads: 1, pid: 9, hostname: "h",
                      role: .evaluator, device: "cpu", dtype: "float32")),
    .hello(Wire.Hello(workerID: "w", version: "v", cores: 1, blasThreads: 1, pid: 1, hostname: "", role: .mergeWorker)),
    .welcome(Wire.Welcome(jobID: "adapt-1", heartbeatIntervalMilliseconds: 500, heartbeatLiveness: 4,
                          baseModelPath: "/models/tiny-llama ✓")),
    .evalRequest(Wire.EvalRequest(
        jobID: "j", requestID: 7, attempt: 2, kind: .gradient,
        adapters: [Wire.AdapterRef(path: "/a/one", contentHash: "ab12"), Wire.AdapterRef(path: "/a/two", contentHash: "")],
        modules: ["base_model.model.model.layers.0.self_attn.q_proj", "base_model.model.model.layers.0.self_attn.v_proj"],
        coefficients: [0.5, -1.25, 0, 1e-300],
        examples: [Wire.Example(id: 0, prompt: "2 + 2 =", completion: " 4"),
                   Wire.Example(id: 41, messagesJSON: #"[{"role":"user","content":"hé"}]"#)],
        maxNewTokens: 16)),
    .evalRequest(Wire.EvalRequest(jobID: "", requestID: 0, attempt: 0, kind: .loss, adapters: [], modules: [],
                                  coefficients: [], examples: [])),
    .evalRequest(Wire.EvalRequest(jobID: "j", requestID: .max, attempt: 1, kind: .lossAndAccuracy,
                                  adapters: [Wire.AdapterRef(path: "/x", contentHash: "h")], modules: ["m"],
                                  coefficients: [], examples: [Wire.Example(id: .max, prompt: "", completion: "")])),
    .evalResult(Wire.EvalResult(requestID: 7, attempt: 2, lossSum: 12.5, tokenCount: 10, exampleIDs: [0, 41],
                                exampleLosses: [5, 7.5], exampleTokens: [4, 6], exampleCorrect: [true, false],
                                gradient: [0.25, -0.5, 1, 2], seconds: 0.75)),
    .evalResult(Wire.EvalResult(requestID: 1, attempt: 1, lossSum: 0, tokenCount: 0)),
    .evalFailed(Wire.EvalFailed(requestID: 3, attempt: 1, error: "adapter /a/one: module q_proj is [8, 4], base layer is [8, 8]", retryable: false)),
    .evalFailed(Wire.EvalFailed(requestID: 3, attempt: 9, error: "", retryable: true)),
]

@Suite("WireCodec: evaluator messages")
struct EvalCodecTests {
    @Test("every evaluator message survives encode → decode", arguments: evalMessages)
    func roundTrip(message: WireMessage) throws {
        let decoded = try WireCodec.decode(WireCodec.encode(message))
        #expect(decoded.version == Wire.protocolVersion)
        #expect(decoded.message == message)
    }

    @Test("a Hello without a role (an old merge worker) decodes as a merge worker")
    func missingRoleIsMergeWorker() throws {
        // Envelope field 10 (hello) holding only worker_id = "w".
        let bytes: [UInt8] = [0x52, 0x03, 0x0A, 0x01, 0x77]
        guard case .hello(let hello) = try WireCodec.decode(bytes).message else { Issue.record("not a hello"); return }
        #expect(hello.role == .mergeWorker)
        #expect(hello.workerID == "w")
    }

    @Test("malformed evaluator messages are errors, never crashes", arguments: [
        // hello with role = 5 (unknown PeerRole)
        [0x52, 0x02, 0x38, 0x05] as [UInt8],
        // eval_request with request_id 1 and kind unset (EVAL_KIND_UNSPECIFIED)
        [0xF2, 0x01, 0x02, 0x10, 0x01],
        // eval_request with kind = 9 (unknown)
        [0xF2, 0x01, 0x02, 0x20, 0x09],
        // eval_result whose length runs past the end
        [0xFA, 0x01, 0x10, 0x08, 0x01],
        // eval_failed with a non-UTF-8 error string
        [0x82, 0x02, 0x04, 0x1A, 0x02, 0xC3, 0x28],
    ])
    func malformed(bytes: [UInt8]) {
        #expect(throws: WireError.self) { try WireCodec.decode(bytes) }
    }

    @Test("an EvalRequest whose coefficients do not fit modules × adapters is inconsistent")
    func coefficientCountChecked() throws {
        let request = Wire.EvalRequest(jobID: "j", requestID: 1, attempt: 1, kind: .gradient,
                                       adapters: [Wire.AdapterRef(path: "/a", contentHash: "")], modules: ["m1", "m2"],
                                       coefficients: [1, 2, 3], examples: [])
        do {
            _ = try WireCodec.decode(WireCodec.encode(.evalRequest(request)))
            Issue.record("decoded")
        } catch let error as WireError {
            #expect(error.code == .inconsistent)
            #expect(error.detail.contains("2 modules × 1 adapters"))
        }
    }

    @Test("non-finite coefficients are rejected")
    func nonFiniteCoefficient() {
        let request = Wire.EvalRequest(jobID: "j", requestID: 1, attempt: 1, kind: .loss,
                                       adapters: [Wire.AdapterRef(path: "/a", contentHash: "")], modules: ["m"],
                                       coefficients: [.nan], examples: [])
        #expect(throws: WireError.self) { try WireCodec.decode(WireCodec.encode(.evalRequest(request))) }
    }

    @Test("an EvalResult whose per-example fields disagree in length is inconsistent")
    func perExampleLengthsChecked() {
        let result = Wire.EvalResult(requestID: 1, attempt: 1, lossSum: 1, tokenCount: 1, exampleIDs: [1, 2],
                                     exampleLosses: [1], exampleTokens: [1, 1])
        do {
            _ = try WireCodec.decode(WireCodec.encode(.evalResult(result)))
            Issue.record("decoded")
        } catch let error as WireError {
            #expect(error.code == .inconsistent)
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("every strict prefix of an eval request is rejected or decodes to something else")
    func truncatedRequest() {
        let bytes = WireCodec.encode(evalMessages[3])
        for length in 0..<bytes.count {
            if let decoded = try? WireCodec.decode(Array(bytes[0..<length])) {
                #expect(decoded.message != evalMessages[3])
            }
        }
    }
}
