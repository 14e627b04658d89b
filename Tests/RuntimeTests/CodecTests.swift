import Testing
@testable import WireProtocol

/// One value of every message type (and the enum cases each field can take), for round trips.
private let sampleMessages: [WireMessage] = [
    .hello(Wire.Hello(workerID: "node-7-1234", version: "0.1.0", cores: 64, blasThreads: 2, pid: 1234, hostname: "node-7")),
    .hello(Wire.Hello(workerID: "", version: "", cores: 0, blasThreads: 0, pid: 0, hostname: "")),
    .welcome(Wire.Welcome(jobID: "job-ä-✓", heartbeatIntervalMilliseconds: 1000, heartbeatLiveness: 3)),
    .reject(reason: "protocol version 2 is not 1"),
    .heartbeat(sequence: .max),
    .task(Wire.Task(
        jobID: "j", taskID: 42, attempt: 2, kind: .mergeModule, module: "base_model.model.layers.0.q_proj",
        method: "lego", optionsJSON: #"{"method":"lego","rank":16}"#, rank: 16, seed: 0xDEAD_BEEF_CAFE_F00D,
        outFeatures: 4096, inFeatures: 11008, inputMode: .shared, paths: ["/a/x.safetensors", "/b/y.safetensors", ""],
        inputs: [
            Wire.InputRef(pathIndex: 0, coefficient: 0.5, rank: 8, aDType: .f32, aOffset: 100, aLength: 32,
                          bDType: .bf16, bOffset: 132, bLength: 16, fanInFanOut: false),
            Wire.InputRef(pathIndex: 1, coefficient: -1.25e-3, rank: 4, aDType: .f16, aOffset: 1 << 40, aLength: 8,
                          bDType: .f64, bOffset: 7, bLength: 64, fanInFanOut: true),
        ],
        blockIndex: 3, blockCount: 9, resultChunkBytes: 4 << 20)),
    .task(Wire.Task(jobID: "", taskID: 0, attempt: 0, kind: .kmeansBlockStep, module: "", method: "", optionsJSON: "",
                    rank: 0, seed: 0, outFeatures: 0, inFeatures: 0, inputMode: .inline, paths: [], inputs: [],
                    resultChunkBytes: 0)),
    .inputChunk(Wire.InputChunk(taskID: 1, attempt: 1, inputIndex: 5, factor: 1, sequence: 2, total: 3,
                                payload: [0, 1, 2, 255, 0], crc32c: 77)),
    .resultChunk(Wire.ResultChunk(taskID: 9, attempt: 3, sequence: 0, total: 1, payload: Array(0..<255), crc32c: 0xFFFF_FFFF)),
    .resultChunk(Wire.ResultChunk(taskID: 9, attempt: 3, sequence: 0, total: 1, payload: [], crc32c: 0)),
    .taskDone(Wire.TaskDone(taskID: 9, attempt: 3, outRank: 16, resultBytes: 1 << 33, resultCRC32C: 0xE306_9283,
                            statsJSON: #"{"relativeError":0.01}"#, seconds: 12.5)),
    .taskFailed(Wire.TaskFailed(taskID: 9, attempt: 1, error: "module x: rank 0", retryable: true)),
    .taskFailed(Wire.TaskFailed(taskID: 9, attempt: 1, error: "", retryable: false)),
    .disconnect(reason: "SIGTERM"),
    .taskFailed(Wire.TaskFailed(taskID: 9, attempt: 2, error: "round payload 3 is not held", retryable: true, missingPayload: 3)),
    .roundPayload(Wire.RoundPayload(payloadID: 3, module: "base_model.model.layers.0.mlp.up_proj", track: 2,
                                    centers: Array(0..<64), crc32c: CRC32C.checksum(Array(0..<64)))),
]

@Suite("WireCodec")
struct CodecTests {
    @Test("every message type survives encode → decode", arguments: sampleMessages)
    func roundTrip(message: WireMessage) throws {
        let bytes = WireCodec.encode(message)
        let decoded = try WireCodec.decode(bytes)
        #expect(decoded.version == Wire.protocolVersion)
        #expect(decoded.message == message)
    }

    @Test("the envelope carries the protocol version it was stamped with")
    func versionIsReported() throws {
        let bytes = WireCodec.encode(.heartbeat(sequence: 1), protocolVersion: 99)
        #expect(try WireCodec.decode(bytes).version == 99)
    }

    @Test("empty bytes are an envelope without a body")
    func emptyIsMissingBody() {
        #expect(throws: WireError.self) { try WireCodec.decode([]) }
        do { _ = try WireCodec.decode([]) } catch let error as WireError {
            #expect(error.code == .missingBody)
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("garbage bytes decode to an error", arguments: [
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] as [UInt8],
        Array("hello, coordinator".utf8),
        [0x0A],                  // field 1 length-delimited, but the field is a varint: wrong wire type
        [0x72, 0x80, 0x80, 0x80, 0x80, 0x10],  // task body with an absurd length
    ])
    func garbageIsAnError(bytes: [UInt8]) {
        #expect(throws: WireError.self) { try WireCodec.decode(bytes) }
    }

    @Test("every strict prefix of a task message is rejected or decodes to something else, never crashes")
    func truncatedTask() throws {
        let bytes = WireCodec.encode(sampleMessages[5])
        for length in 0..<bytes.count {
            let prefix = Array(bytes[0..<length])
            if let decoded = try? WireCodec.decode(prefix) {
                #expect(decoded.message != sampleMessages[5])
            }
        }
    }

    @Test("unknown enum values are rejected with a clear error")
    func unknownEnum() throws {
        // Task body (field 14) holding only `kind = 99` (field 4, varint; 0–9 are allocated).
        let bytes: [UInt8] = [0x08, 0x01, 0x72, 0x02, 0x20, 0x63]
        do {
            _ = try WireCodec.decode(bytes)
            Issue.record("decoded a task with an unknown kind")
        } catch let error as WireError {
            #expect(error.code == .invalidField)
            #expect(error.description.contains("task.kind"))
        }
    }

    @Test("a chunk whose sequence is not below its total is rejected")
    func chunkNumbering() {
        let bytes = WireCodec.encode(.resultChunk(Wire.ResultChunk(taskID: 1, attempt: 1, sequence: 3, total: 3, payload: [], crc32c: 0)))
        #expect(throws: WireError.self) { try WireCodec.decode(bytes) }
    }

    @Test("invalid UTF-8 in a string field is rejected")
    func invalidUTF8() {
        // Reject body (field 12) with reason = [0xC3, 0x28].
        let bytes: [UInt8] = [0x62, 0x04, 0x0A, 0x02, 0xC3, 0x28]
        #expect(throws: WireError.self) { try WireCodec.decode(bytes) }
    }

    @Test("envelopes above the size limit are refused before parsing")
    func sizeLimit() {
        let bytes = WireCodec.encode(.reject(reason: String(repeating: "x", count: 100)))
        #expect(throws: WireError.self) { try WireCodec.decode(bytes, maxEnvelopeBytes: 50) }
    }

    @Test("random and mutated bytes never crash the decoder", arguments: [1 as UInt64, 2, 3])
    func fuzz(seed: UInt64) {
        var random = SplitMix(seed: seed)
        let valid = sampleMessages.map { WireCodec.encode($0) }
        for round in 0..<2_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = valid[Int(random.next() % UInt64(valid.count))]
                for _ in 0..<(1 + Int(random.next() % 4)) where !bytes.isEmpty {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            _ = try? WireCodec.decode(bytes)
        }
    }
}

/// Deterministic PRNG for the fuzz loop (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The crc32 instruction path of CRC-32C against the portable table path and the standard check value.
@Suite struct CRC32CPathTests {
    @Test("hardware and table CRC-32C agree on every length and alignment; the check value of \"123456789\" is 0xE3069283")
    func hardwareMatchesTable() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        var bytes = [UInt8](repeating: 0, count: 4099)
        var state: UInt64 = 1
        for i in bytes.indices { state = state &* 6_364_136_223_846_793_005 &+ 1; bytes[i] = UInt8(truncatingIfNeeded: state >> 33) }
        for (start, end) in [(0, 0), (0, 1), (1, 8), (3, 17), (5, 4099), (0, 4096)] {
            var fast = CRC32C(), table = CRC32C()
            bytes[start..<end].withUnsafeBytes { fast.update($0); table.updateByTable($0) }
            #expect(fast.value == table.value, "bytes \(start)..<\(end)")
        }
    }
}
