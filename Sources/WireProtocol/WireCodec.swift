import AdapterIO
import CBrickyardProto

/// Converts `WireMessage`s to and from the bytes of one `brickyard.v1.Envelope` (proto/brickyard.proto) with
/// the protobuf-c generated code. The only place in Brickyard that touches protobuf-c.
///
/// Decoding never trusts its input: anything protobuf-c rejects, an envelope without a body, unknown enum
/// values, invalid UTF-8 or inconsistent chunk numbering becomes a `WireError`. Checking the protocol version is
/// the caller's job (it gets the version back so it can reply with a `reject` naming it).
public enum WireCodec {
    /// Largest envelope `decode` accepts by default: a 4 MiB result chunk plus headroom, with room for
    /// generous `result_chunk_bytes` settings. Receivers should also set `ZMQSocket.setMaxMessageSize`.
    public static let defaultMaxEnvelopeBytes = 256 << 20

    /// Serialises `message` in an envelope stamped with `protocolVersion` (tests pass other versions).
    public static func encode(_ message: WireMessage, protocolVersion: UInt32 = Wire.protocolVersion) -> [UInt8] {
        var bytes: [UInt8] = []
        pack(message, protocolVersion: protocolVersion) { size, write in
            bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                initialized = buffer.baseAddress.map { write($0) } ?? 0
            }
        }
        return bytes
    }

    /// Packs `message` once, straight into the caller's memory: `into` gets the exact size and a `write` function
    /// that packs into the storage it is given (at least that size; returns the bytes written) — e.g. a ZeroMQ
    /// message's own buffer (`ZMQSocket.send(_:to:dontWait:)`), so the envelope is never copied. The bulk bytes of
    /// chunks and round payloads are read from the message's own storage (no arena copy): protobuf-c reads them
    /// only while packing, inside this call.
    public static func pack<Result>(_ message: WireMessage, protocolVersion: UInt32 = Wire.protocolVersion,
                                    into: (Int, (UnsafeMutablePointer<UInt8>) -> Int) throws -> Result) rethrows -> Result {
        let bulk: [UInt8]? = switch message {
        case .resultChunk(let chunk): chunk.payload
        case .inputChunk(let chunk): chunk.payload
        case .roundPayload(let payload): payload.centers
        default: nil
        }
        guard let bulk, !bulk.isEmpty else { return try pack(message, protocolVersion: protocolVersion, bulk: nil, into: into) }
        return try bulk.withUnsafeBufferPointer { try pack(message, protocolVersion: protocolVersion, bulk: $0, into: into) }
    }

    private static func pack<Result>(_ message: WireMessage, protocolVersion: UInt32, bulk: UnsafeBufferPointer<UInt8>?,
                                     into: (Int, (UnsafeMutablePointer<UInt8>) -> Int) throws -> Result) rethrows -> Result {
        let arena = CArena()
        defer { arena.deallocateAll() }
        let envelope = arena.allocate(Brickyard__V1__Envelope.self)
        brickyard__v1__envelope__init(envelope)
        envelope.pointee.protocol_version = protocolVersion
        WireEncoder(arena: arena, bulk: bulk).fill(envelope, with: message)
        let size = brickyard__v1__envelope__get_packed_size(envelope)
        // pack writes exactly get_packed_size bytes.
        return try into(size) { brickyard__v1__envelope__pack(envelope, $0) }
    }

    /// Parses one envelope. Throws `WireError` for anything that is not a complete, valid message.
    public static func decode(_ bytes: [UInt8], maxEnvelopeBytes: Int = defaultMaxEnvelopeBytes) throws -> (version: UInt32, message: WireMessage) {
        guard bytes.count <= maxEnvelopeBytes else {
            throw WireError(.tooLarge, "envelope of \(bytes.count) bytes exceeds the \(maxEnvelopeBytes)-byte limit")
        }
        let unpacked: UnsafeMutablePointer<Brickyard__V1__Envelope>? = bytes.withUnsafeBufferPointer { buffer in
            // protobuf-c needs a non-null pointer even for zero bytes.
            var empty: UInt8 = 0
            if let base = buffer.baseAddress { return brickyard__v1__envelope__unpack(nil, buffer.count, base) }
            return brickyard__v1__envelope__unpack(nil, 0, &empty)
        }
        guard let envelope = unpacked else {
            throw WireError(.malformed, "\(bytes.count) bytes are not a brickyard.v1.Envelope")
        }
        defer { brickyard__v1__envelope__free_unpacked(envelope, nil) }
        let message = try WireDecoder.message(from: envelope.pointee)
        return (envelope.pointee.protocol_version, message)
    }
}

/// Builds the protobuf-c tree for one message; every pointer it stores comes from `arena`.
struct WireEncoder {
    let arena: CArena
    /// The message's bulk field (a chunk's payload, a round payload's centers), borrowed for the packing.
    var bulk: UnsafeBufferPointer<UInt8>? = nil

    func fill(_ envelope: UnsafeMutablePointer<Brickyard__V1__Envelope>, with message: WireMessage) {
        switch message {
        case .hello(let hello):
            let body = arena.allocate(Brickyard__V1__Hello.self)
            brickyard__v1__hello__init(body)
            body.pointee.worker_id = arena.cString(hello.workerID)
            body.pointee.version = arena.cString(hello.version)
            body.pointee.cores = hello.cores
            body.pointee.blas_threads = hello.blasThreads
            body.pointee.pid = hello.pid
            body.pointee.hostname = arena.cString(hello.hostname)
            body.pointee.role = WireEnums.protoPeerRole(hello.role)
            body.pointee.device = arena.cString(hello.device)
            body.pointee.dtype = arena.cString(hello.dtype)
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_HELLO
            envelope.pointee.hello = body
        case .welcome(let welcome):
            let body = arena.allocate(Brickyard__V1__Welcome.self)
            brickyard__v1__welcome__init(body)
            body.pointee.job_id = arena.cString(welcome.jobID)
            body.pointee.heartbeat_interval_ms = welcome.heartbeatIntervalMilliseconds
            body.pointee.heartbeat_liveness = welcome.heartbeatLiveness
            body.pointee.base_model_path = arena.cString(welcome.baseModelPath)
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_WELCOME
            envelope.pointee.welcome = body
        case .reject(let reason):
            let body = arena.allocate(Brickyard__V1__Reject.self)
            brickyard__v1__reject__init(body)
            body.pointee.reason = arena.cString(reason)
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_REJECT
            envelope.pointee.reject = body
        case .heartbeat(let sequence):
            let body = arena.allocate(Brickyard__V1__Heartbeat.self)
            brickyard__v1__heartbeat__init(body)
            body.pointee.sequence = sequence
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_HEARTBEAT
            envelope.pointee.heartbeat = body
        case .task(let task):
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_TASK
            envelope.pointee.task = makeTask(task)
        case .inputChunk(let chunk):
            let body = arena.allocate(Brickyard__V1__InputChunk.self)
            brickyard__v1__input_chunk__init(body)
            body.pointee.task_id = chunk.taskID
            body.pointee.attempt = chunk.attempt
            body.pointee.input_index = chunk.inputIndex
            body.pointee.factor = chunk.factor
            body.pointee.sequence = chunk.sequence
            body.pointee.total = chunk.total
            body.pointee.payload = bulkBinary(chunk.payload)
            body.pointee.crc32c = chunk.crc32c
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_INPUT_CHUNK
            envelope.pointee.input_chunk = body
        case .resultChunk(let chunk):
            let body = arena.allocate(Brickyard__V1__ResultChunk.self)
            brickyard__v1__result_chunk__init(body)
            body.pointee.task_id = chunk.taskID
            body.pointee.attempt = chunk.attempt
            body.pointee.sequence = chunk.sequence
            body.pointee.total = chunk.total
            body.pointee.payload = bulkBinary(chunk.payload)
            body.pointee.crc32c = chunk.crc32c
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_RESULT_CHUNK
            envelope.pointee.result_chunk = body
        case .taskDone(let done):
            let body = arena.allocate(Brickyard__V1__TaskDone.self)
            brickyard__v1__task_done__init(body)
            body.pointee.task_id = done.taskID
            body.pointee.attempt = done.attempt
            body.pointee.out_rank = done.outRank
            body.pointee.result_bytes = done.resultBytes
            body.pointee.result_crc32c = done.resultCRC32C
            body.pointee.stats_json = arena.cString(done.statsJSON)
            body.pointee.seconds = done.seconds
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_TASK_DONE
            envelope.pointee.task_done = body
        case .taskFailed(let failed):
            let body = arena.allocate(Brickyard__V1__TaskFailed.self)
            brickyard__v1__task_failed__init(body)
            body.pointee.task_id = failed.taskID
            body.pointee.attempt = failed.attempt
            body.pointee.error = arena.cString(failed.error)
            body.pointee.retryable = failed.retryable ? 1 : 0
            body.pointee.missing_payload = failed.missingPayload
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_TASK_FAILED
            envelope.pointee.task_failed = body
        case .disconnect(let reason):
            let body = arena.allocate(Brickyard__V1__Disconnect.self)
            brickyard__v1__disconnect__init(body)
            body.pointee.reason = arena.cString(reason)
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_DISCONNECT
            envelope.pointee.disconnect = body
        case .evalRequest(let request):
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_EVAL_REQUEST
            envelope.pointee.eval_request = makeEvalRequest(request)
        case .evalResult(let result):
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_EVAL_RESULT
            envelope.pointee.eval_result = makeEvalResult(result)
        case .evalFailed(let failed):
            let body = arena.allocate(Brickyard__V1__EvalFailed.self)
            brickyard__v1__eval_failed__init(body)
            body.pointee.request_id = failed.requestID
            body.pointee.attempt = failed.attempt
            body.pointee.error = arena.cString(failed.error)
            body.pointee.retryable = failed.retryable ? 1 : 0
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_EVAL_FAILED
            envelope.pointee.eval_failed = body
        case .kmeansBlockTask(let block):
            let body = arena.allocate(Brickyard__V1__KMeansBlockTask.self)
            brickyard__v1__kmeans_block_task__init(body)
            body.pointee.task = makeTask(block.task)
            body.pointee.round = block.round
            body.pointee.unit_id_offset = block.unitIDOffset
            body.pointee.center_count = block.centerCount
            body.pointee.centers = binary(block.centers)
            body.pointee.oversampling = block.oversampling
            body.pointee.farthest = block.farthest
            body.pointee.center_offset = block.centerOffset
            body.pointee.nearest = binary(block.nearest)
            body.pointee.inputs_follow = block.inputsFollow ? 1 : 0
            body.pointee.product = block.product
            body.pointee.probes = block.probes
            body.pointee.principal = block.principal
            body.pointee.assignment = binary(block.assignment)
            body.pointee.payload_id = block.payloadID
            body.pointee.payload_crc32c = block.payloadCRC32C
            body.pointee.cost = block.cost
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_KMEANS_BLOCK_TASK
            envelope.pointee.kmeans_block_task = body
        case .roundPayload(let payload):
            let body = arena.allocate(Brickyard__V1__RoundPayload.self)
            brickyard__v1__round_payload__init(body)
            body.pointee.payload_id = payload.payloadID
            body.pointee.module = arena.cString(payload.module)
            body.pointee.track = payload.track
            body.pointee.centers = bulkBinary(payload.centers)
            body.pointee.crc32c = payload.crc32c
            envelope.pointee.body_case = BRICKYARD__V1__ENVELOPE__BODY_ROUND_PAYLOAD
            envelope.pointee.round_payload = body
        }
    }

    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        ProtobufCBinaryData(len: bytes.count, data: arena.bytes(bytes))
    }

    /// The borrowed bulk bytes when `bytes` is the bulk field (`WireCodec.encode` passes exactly that array), else
    /// an arena copy.
    func bulkBinary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard let bulk, let base = bulk.baseAddress, bulk.count == bytes.count else { return binary(bytes) }
        return ProtobufCBinaryData(len: bulk.count, data: UnsafeMutablePointer(mutating: base))
    }

    private func makeTask(_ task: Wire.Task) -> UnsafeMutablePointer<Brickyard__V1__Task> {
        let body = arena.allocate(Brickyard__V1__Task.self)
        brickyard__v1__task__init(body)
        body.pointee.job_id = arena.cString(task.jobID)
        body.pointee.task_id = task.taskID
        body.pointee.attempt = task.attempt
        body.pointee.kind = WireEnums.protoTaskKind(task.kind)
        body.pointee.module = arena.cString(task.module)
        body.pointee.method = arena.cString(task.method)
        body.pointee.options_json = arena.cString(task.optionsJSON)
        body.pointee.rank = task.rank
        body.pointee.seed = task.seed
        body.pointee.out_features = task.outFeatures
        body.pointee.in_features = task.inFeatures
        body.pointee.input_mode = WireEnums.protoInputMode(task.inputMode)
        // Repeated strings are `char **`: an arena array of arena strings.
        let paths = arena.allocateArray(UnsafeMutablePointer<CChar>?.self, count: task.paths.count)
        for (index, path) in task.paths.enumerated() { paths[index] = arena.cString(path) }
        body.pointee.n_paths = task.paths.count
        body.pointee.paths = paths
        // Repeated messages are `InputRef **`: an arena array of arena messages.
        let inputs = arena.allocateArray(UnsafeMutablePointer<Brickyard__V1__InputRef>?.self, count: task.inputs.count)
        for (index, input) in task.inputs.enumerated() { inputs[index] = makeInputRef(input) }
        body.pointee.n_inputs = task.inputs.count
        body.pointee.inputs = inputs
        body.pointee.block_index = task.blockIndex
        body.pointee.block_count = task.blockCount
        body.pointee.result_chunk_bytes = task.resultChunkBytes
        return body
    }

    private func makeInputRef(_ input: Wire.InputRef) -> UnsafeMutablePointer<Brickyard__V1__InputRef> {
        let ref = arena.allocate(Brickyard__V1__InputRef.self)
        brickyard__v1__input_ref__init(ref)
        ref.pointee.path_index = input.pathIndex
        ref.pointee.coefficient = input.coefficient
        ref.pointee.rank = input.rank
        ref.pointee.a_dtype = WireEnums.protoDType(input.aDType)
        ref.pointee.a_offset = input.aOffset
        ref.pointee.a_length = input.aLength
        ref.pointee.b_dtype = WireEnums.protoDType(input.bDType)
        ref.pointee.b_offset = input.bOffset
        ref.pointee.b_length = input.bLength
        ref.pointee.fan_in_fan_out = input.fanInFanOut ? 1 : 0
        return ref
    }
}

/// Reads an unpacked protobuf-c tree into Swift values, checking every pointer and enum.
enum WireDecoder {
    static func message(from envelope: Brickyard__V1__Envelope) throws -> WireMessage {
        switch envelope.body_case {
        case BRICKYARD__V1__ENVELOPE__BODY_HELLO:
            let hello = try body(envelope.hello, "hello")
            guard let role = WireEnums.peerRole(hello.role) else {
                throw WireError(.invalidField, "hello.role \(hello.role.rawValue) is not a known PeerRole")
            }
            return .hello(Wire.Hello(
                workerID: try string(hello.worker_id, "hello.worker_id"),
                version: try string(hello.version, "hello.version"),
                cores: hello.cores, blasThreads: hello.blas_threads, pid: hello.pid,
                hostname: try string(hello.hostname, "hello.hostname"), role: role,
                device: try string(hello.device, "hello.device"), dtype: try string(hello.dtype, "hello.dtype")))
        case BRICKYARD__V1__ENVELOPE__BODY_WELCOME:
            let welcome = try body(envelope.welcome, "welcome")
            return .welcome(Wire.Welcome(
                jobID: try string(welcome.job_id, "welcome.job_id"),
                heartbeatIntervalMilliseconds: welcome.heartbeat_interval_ms,
                heartbeatLiveness: welcome.heartbeat_liveness,
                baseModelPath: try string(welcome.base_model_path, "welcome.base_model_path")))
        case BRICKYARD__V1__ENVELOPE__BODY_REJECT:
            return .reject(reason: try string(try body(envelope.reject, "reject").reason, "reject.reason"))
        case BRICKYARD__V1__ENVELOPE__BODY_HEARTBEAT:
            return .heartbeat(sequence: try body(envelope.heartbeat, "heartbeat").sequence)
        case BRICKYARD__V1__ENVELOPE__BODY_TASK:
            return .task(try task(try body(envelope.task, "task")))
        case BRICKYARD__V1__ENVELOPE__BODY_INPUT_CHUNK:
            let chunk = try body(envelope.input_chunk, "input_chunk")
            try checkNumbering(sequence: chunk.sequence, total: chunk.total, "input_chunk")
            guard chunk.factor <= 1 else {
                throw WireError(.invalidField, "input_chunk.factor is \(chunk.factor); expected 0 (A) or 1 (B)")
            }
            return .inputChunk(Wire.InputChunk(
                taskID: chunk.task_id, attempt: chunk.attempt, inputIndex: chunk.input_index, factor: chunk.factor,
                sequence: chunk.sequence, total: chunk.total, payload: try bytes(chunk.payload, "input_chunk.payload"),
                crc32c: chunk.crc32c))
        case BRICKYARD__V1__ENVELOPE__BODY_RESULT_CHUNK:
            let chunk = try body(envelope.result_chunk, "result_chunk")
            try checkNumbering(sequence: chunk.sequence, total: chunk.total, "result_chunk")
            return .resultChunk(Wire.ResultChunk(
                taskID: chunk.task_id, attempt: chunk.attempt, sequence: chunk.sequence, total: chunk.total,
                payload: try bytes(chunk.payload, "result_chunk.payload"), crc32c: chunk.crc32c))
        case BRICKYARD__V1__ENVELOPE__BODY_TASK_DONE:
            let done = try body(envelope.task_done, "task_done")
            return .taskDone(Wire.TaskDone(
                taskID: done.task_id, attempt: done.attempt, outRank: done.out_rank, resultBytes: done.result_bytes,
                resultCRC32C: done.result_crc32c, statsJSON: try string(done.stats_json, "task_done.stats_json"),
                seconds: done.seconds))
        case BRICKYARD__V1__ENVELOPE__BODY_TASK_FAILED:
            let failed = try body(envelope.task_failed, "task_failed")
            return .taskFailed(Wire.TaskFailed(
                taskID: failed.task_id, attempt: failed.attempt, error: try string(failed.error, "task_failed.error"),
                retryable: failed.retryable != 0, missingPayload: failed.missing_payload))
        case BRICKYARD__V1__ENVELOPE__BODY_DISCONNECT:
            return .disconnect(reason: try string(try body(envelope.disconnect, "disconnect").reason, "disconnect.reason"))
        case BRICKYARD__V1__ENVELOPE__BODY_EVAL_REQUEST:
            return .evalRequest(try evalRequest(try body(envelope.eval_request, "eval_request")))
        case BRICKYARD__V1__ENVELOPE__BODY_EVAL_RESULT:
            return .evalResult(try evalResult(try body(envelope.eval_result, "eval_result")))
        case BRICKYARD__V1__ENVELOPE__BODY_EVAL_FAILED:
            let failed = try body(envelope.eval_failed, "eval_failed")
            return .evalFailed(Wire.EvalFailed(
                requestID: failed.request_id, attempt: failed.attempt,
                error: try string(failed.error, "eval_failed.error"), retryable: failed.retryable != 0))
        case BRICKYARD__V1__ENVELOPE__BODY_KMEANS_BLOCK_TASK:
            let block = try body(envelope.kmeans_block_task, "kmeans_block_task")
            let task = try task(try body(block.task, "kmeans_block_task.task"))
            let centers = try bytes(block.centers, "kmeans_block_task.centers")
            guard centers.count % 4 == 0 else {
                throw WireError(.invalidField, "kmeans_block_task.centers has \(centers.count) bytes, not whole float32 values")
            }
            return .kmeansBlockTask(Wire.KMeansBlockTask(
                task: task, round: block.round, unitIDOffset: block.unit_id_offset, centerCount: block.center_count,
                centers: centers, oversampling: block.oversampling, farthest: block.farthest,
                centerOffset: block.center_offset, nearest: try bytes(block.nearest, "kmeans_block_task.nearest"),
                inputsFollow: block.inputs_follow != 0, product: block.product, probes: block.probes,
                principal: block.principal, assignment: try bytes(block.assignment, "kmeans_block_task.assignment"),
                payloadID: block.payload_id, payloadCRC32C: block.payload_crc32c, cost: block.cost))
        case BRICKYARD__V1__ENVELOPE__BODY_ROUND_PAYLOAD:
            let payload = try body(envelope.round_payload, "round_payload")
            let centers = try bytes(payload.centers, "round_payload.centers")
            guard payload.payload_id != 0, centers.count % 4 == 0 else {
                throw WireError(.invalidField, "round_payload \(payload.payload_id) has \(centers.count) bytes (needs a non-zero id and whole float32 values)")
            }
            return .roundPayload(Wire.RoundPayload(
                payloadID: payload.payload_id, module: try string(payload.module, "round_payload.module"),
                track: payload.track, centers: centers, crc32c: payload.crc32c))
        case BRICKYARD__V1__ENVELOPE__BODY__NOT_SET:
            throw WireError(.missingBody, "envelope (protocol version \(envelope.protocol_version)) has no body")
        default:
            throw WireError(.invalidField, "envelope body case \(envelope.body_case.rawValue) is unknown")
        }
    }

    private static func task(_ task: Brickyard__V1__Task) throws -> Wire.Task {
        guard let kind = WireEnums.taskKind(task.kind) else {
            throw WireError(.invalidField, "task.kind \(task.kind.rawValue) is not a known TaskKind")
        }
        guard let inputMode = WireEnums.inputMode(task.input_mode) else {
            throw WireError(.invalidField, "task.input_mode \(task.input_mode.rawValue) is not a known InputMode")
        }
        var paths: [String] = []
        if task.n_paths > 0 {
            guard let cPaths = task.paths else { throw WireError(.malformed, "task.paths is null with \(task.n_paths) entries") }
            paths.reserveCapacity(task.n_paths)
            for index in 0..<task.n_paths { paths.append(try string(cPaths[index], "task.paths[\(index)]")) }
        }
        var inputs: [Wire.InputRef] = []
        if task.n_inputs > 0 {
            guard let cInputs = task.inputs else { throw WireError(.malformed, "task.inputs is null with \(task.n_inputs) entries") }
            inputs.reserveCapacity(task.n_inputs)
            for index in 0..<task.n_inputs {
                inputs.append(try inputRef(try body(cInputs[index], "task.inputs[\(index)]"), index: index))
            }
        }
        return Wire.Task(
            jobID: try string(task.job_id, "task.job_id"), taskID: task.task_id, attempt: task.attempt, kind: kind,
            module: try string(task.module, "task.module"), method: try string(task.method, "task.method"),
            optionsJSON: try string(task.options_json, "task.options_json"), rank: task.rank, seed: task.seed,
            outFeatures: task.out_features, inFeatures: task.in_features, inputMode: inputMode, paths: paths,
            inputs: inputs, blockIndex: task.block_index, blockCount: task.block_count,
            resultChunkBytes: task.result_chunk_bytes)
    }

    private static func inputRef(_ ref: Brickyard__V1__InputRef, index: Int) throws -> Wire.InputRef {
        guard let aDType = WireEnums.dtype(ref.a_dtype) else {
            throw WireError(.invalidField, "task.inputs[\(index)].a_dtype \(ref.a_dtype.rawValue) is not a known DType")
        }
        guard let bDType = WireEnums.dtype(ref.b_dtype) else {
            throw WireError(.invalidField, "task.inputs[\(index)].b_dtype \(ref.b_dtype.rawValue) is not a known DType")
        }
        return Wire.InputRef(
            pathIndex: ref.path_index, coefficient: ref.coefficient, rank: ref.rank, aDType: aDType,
            aOffset: ref.a_offset, aLength: ref.a_length, bDType: bDType, bOffset: ref.b_offset,
            bLength: ref.b_length, fanInFanOut: ref.fan_in_fan_out != 0)
    }

    static func body<T>(_ pointer: UnsafeMutablePointer<T>?, _ field: String) throws -> T {
        guard let pointer else { throw WireError(.malformed, "\(field) is null") }
        return pointer.pointee
    }

    static func string(_ pointer: UnsafeMutablePointer<CChar>?, _ field: String) throws -> String {
        guard let pointer else { return "" }
        guard let string = String(validatingCString: pointer) else {
            throw WireError(.invalidField, "\(field) is not valid UTF-8")
        }
        return string
    }

    static func bytes(_ data: ProtobufCBinaryData, _ field: String) throws -> [UInt8] {
        guard data.len > 0 else { return [] }
        guard let base = data.data else { throw WireError(.malformed, "\(field) is null with \(data.len) bytes") }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    private static func checkNumbering(sequence: UInt32, total: UInt32, _ message: String) throws {
        guard total > 0, sequence < total else {
            throw WireError(.invalidField, "\(message) sequence \(sequence) of total \(total) is out of range")
        }
    }
}

/// Mapping between the Swift and protobuf-c enums. Unknown wire values map to nil (the decoder's error).
enum WireEnums {
    static func protoDType(_ dtype: DType) -> Brickyard__V1__DType {
        switch dtype {
        case .f32: BRICKYARD__V1__DTYPE__DTYPE_F32
        case .f16: BRICKYARD__V1__DTYPE__DTYPE_F16
        case .bf16: BRICKYARD__V1__DTYPE__DTYPE_BF16
        case .f64: BRICKYARD__V1__DTYPE__DTYPE_F64
        }
    }

    static func dtype(_ value: Brickyard__V1__DType) -> DType? {
        switch value {
        case BRICKYARD__V1__DTYPE__DTYPE_F32: .f32
        case BRICKYARD__V1__DTYPE__DTYPE_F16: .f16
        case BRICKYARD__V1__DTYPE__DTYPE_BF16: .bf16
        case BRICKYARD__V1__DTYPE__DTYPE_F64: .f64
        default: nil
        }
    }

    static func protoTaskKind(_ kind: Wire.TaskKind) -> Brickyard__V1__TaskKind {
        switch kind {
        case .mergeModule: BRICKYARD__V1__TASK_KIND__TASK_KIND_MERGE_MODULE
        case .kmeansBlockStep: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_BLOCK_STEP
        case .kmeansFirstCenter: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_FIRST_CENTER
        case .kmeansOversample: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_OVERSAMPLE
        case .kmeansDraw: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_DRAW
        case .kmeansCandidateWeights: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_CANDIDATE_WEIGHTS
        case .kmeansLloyd: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_LLOYD
        case .kmeansReweight: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_REWEIGHT
        case .kmeansProduct: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_PRODUCT
        case .kmeansPrincipal: BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_PRINCIPAL
        }
    }

    static func taskKind(_ value: Brickyard__V1__TaskKind) -> Wire.TaskKind? {
        switch value {
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_MERGE_MODULE: .mergeModule
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_BLOCK_STEP: .kmeansBlockStep
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_FIRST_CENTER: .kmeansFirstCenter
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_OVERSAMPLE: .kmeansOversample
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_DRAW: .kmeansDraw
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_CANDIDATE_WEIGHTS: .kmeansCandidateWeights
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_LLOYD: .kmeansLloyd
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_REWEIGHT: .kmeansReweight
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_PRODUCT: .kmeansProduct
        case BRICKYARD__V1__TASK_KIND__TASK_KIND_KMEANS_PRINCIPAL: .kmeansPrincipal
        default: nil
        }
    }

    static func protoInputMode(_ mode: Wire.InputMode) -> Brickyard__V1__InputMode {
        switch mode {
        case .shared: BRICKYARD__V1__INPUT_MODE__INPUT_MODE_SHARED
        case .inline: BRICKYARD__V1__INPUT_MODE__INPUT_MODE_INLINE
        }
    }

    static func inputMode(_ value: Brickyard__V1__InputMode) -> Wire.InputMode? {
        switch value {
        case BRICKYARD__V1__INPUT_MODE__INPUT_MODE_SHARED: .shared
        case BRICKYARD__V1__INPUT_MODE__INPUT_MODE_INLINE: .inline
        default: nil
        }
    }
}
