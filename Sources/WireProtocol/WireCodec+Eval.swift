import CBrickyardProto

// Encoding and decoding of the evaluator messages (envelope fields 30–49), kept next to but apart from the
// merge-task messages. Same rules: every pointer comes from the encoder's arena; the decoder trusts nothing.

extension WireEncoder {
    func makeEvalRequest(_ request: Wire.EvalRequest) -> UnsafeMutablePointer<Brickyard__V1__EvalRequest> {
        let body = arena.allocate(Brickyard__V1__EvalRequest.self)
        brickyard__v1__eval_request__init(body)
        body.pointee.job_id = arena.cString(request.jobID)
        body.pointee.request_id = request.requestID
        body.pointee.attempt = request.attempt
        body.pointee.kind = WireEnums.protoEvalKind(request.kind)
        let adapters = arena.allocateArray(UnsafeMutablePointer<Brickyard__V1__AdapterRef>?.self, count: request.adapters.count)
        for (index, adapter) in request.adapters.enumerated() {
            let ref = arena.allocate(Brickyard__V1__AdapterRef.self)
            brickyard__v1__adapter_ref__init(ref)
            ref.pointee.path = arena.cString(adapter.path)
            ref.pointee.content_hash = arena.cString(adapter.contentHash)
            adapters[index] = ref
        }
        body.pointee.n_adapters = request.adapters.count
        body.pointee.adapters = adapters
        let modules = arena.allocateArray(UnsafeMutablePointer<CChar>?.self, count: request.modules.count)
        for (index, module) in request.modules.enumerated() { modules[index] = arena.cString(module) }
        body.pointee.n_modules = request.modules.count
        body.pointee.modules = modules
        body.pointee.n_coefficients = request.coefficients.count
        body.pointee.coefficients = copy(request.coefficients)
        let examples = arena.allocateArray(UnsafeMutablePointer<Brickyard__V1__Example>?.self, count: request.examples.count)
        for (index, example) in request.examples.enumerated() {
            let message = arena.allocate(Brickyard__V1__Example.self)
            brickyard__v1__example__init(message)
            message.pointee.id = example.id
            message.pointee.prompt = arena.cString(example.prompt)
            message.pointee.completion = arena.cString(example.completion)
            message.pointee.messages_json = arena.cString(example.messagesJSON)
            examples[index] = message
        }
        body.pointee.n_examples = request.examples.count
        body.pointee.examples = examples
        body.pointee.max_new_tokens = request.maxNewTokens
        return body
    }

    func makeEvalResult(_ result: Wire.EvalResult) -> UnsafeMutablePointer<Brickyard__V1__EvalResult> {
        let body = arena.allocate(Brickyard__V1__EvalResult.self)
        brickyard__v1__eval_result__init(body)
        body.pointee.request_id = result.requestID
        body.pointee.attempt = result.attempt
        body.pointee.loss_sum = result.lossSum
        body.pointee.token_count = result.tokenCount
        body.pointee.n_example_ids = result.exampleIDs.count
        body.pointee.example_ids = copy(result.exampleIDs)
        body.pointee.n_example_losses = result.exampleLosses.count
        body.pointee.example_losses = copy(result.exampleLosses)
        body.pointee.n_example_tokens = result.exampleTokens.count
        body.pointee.example_tokens = copy(result.exampleTokens)
        body.pointee.n_example_correct = result.exampleCorrect.count
        body.pointee.example_correct = copy(result.exampleCorrect.map { $0 ? protobuf_c_boolean(1) : protobuf_c_boolean(0) })
        body.pointee.n_gradient = result.gradient.count
        body.pointee.gradient = copy(result.gradient)
        body.pointee.seconds = result.seconds
        return body
    }

    /// An arena copy of a repeated scalar field.
    private func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let pointer = arena.allocateArray(T.self, count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.initialize(from: base, count: source.count) }
        }
        return pointer
    }
}

extension WireDecoder {
    /// Largest number of entries accepted in one repeated field of an evaluator message.
    static let maxRepeated = 1 << 24

    static func evalRequest(_ request: Brickyard__V1__EvalRequest) throws -> Wire.EvalRequest {
        guard let kind = WireEnums.evalKind(request.kind) else {
            throw WireError(.invalidField, "eval_request.kind \(request.kind.rawValue) is not a known EvalKind")
        }
        let adapters = try messages(request.adapters, count: request.n_adapters, "eval_request.adapters").enumerated().map { index, ref in
            Wire.AdapterRef(path: try string(ref.path, "eval_request.adapters[\(index)].path"),
                            contentHash: try string(ref.content_hash, "eval_request.adapters[\(index)].content_hash"))
        }
        var modules: [String] = []
        if request.n_modules > 0 {
            guard let cModules = request.modules else { throw WireError(.malformed, "eval_request.modules is null with \(request.n_modules) entries") }
            for index in 0..<request.n_modules { modules.append(try string(cModules[index], "eval_request.modules[\(index)]")) }
        }
        let coefficients = try scalars(request.coefficients, count: request.n_coefficients, "eval_request.coefficients")
        guard coefficients.isEmpty || coefficients.count == modules.count * adapters.count else {
            throw WireError(.inconsistent,
                "eval_request.coefficients has \(coefficients.count) values; \(modules.count) modules × \(adapters.count) adapters need \(modules.count * adapters.count) (or none)")
        }
        if let bad = coefficients.firstIndex(where: { !$0.isFinite }) {
            throw WireError(.invalidField, "eval_request.coefficients[\(bad)] is not finite")
        }
        let examples = try messages(request.examples, count: request.n_examples, "eval_request.examples").enumerated().map { index, example in
            Wire.Example(id: example.id, prompt: try string(example.prompt, "eval_request.examples[\(index)].prompt"),
                         completion: try string(example.completion, "eval_request.examples[\(index)].completion"),
                         messagesJSON: try string(example.messages_json, "eval_request.examples[\(index)].messages_json"))
        }
        return Wire.EvalRequest(jobID: try string(request.job_id, "eval_request.job_id"), requestID: request.request_id,
                                attempt: request.attempt, kind: kind, adapters: adapters, modules: modules,
                                coefficients: coefficients, examples: examples, maxNewTokens: request.max_new_tokens)
    }

    static func evalResult(_ result: Brickyard__V1__EvalResult) throws -> Wire.EvalResult {
        let ids = try scalars(result.example_ids, count: result.n_example_ids, "eval_result.example_ids")
        let losses = try scalars(result.example_losses, count: result.n_example_losses, "eval_result.example_losses")
        let tokens = try scalars(result.example_tokens, count: result.n_example_tokens, "eval_result.example_tokens")
        let correct = try scalars(result.example_correct, count: result.n_example_correct, "eval_result.example_correct").map { $0 != 0 }
        let gradient = try scalars(result.gradient, count: result.n_gradient, "eval_result.gradient")
        guard losses.count == ids.count, tokens.count == ids.count, correct.isEmpty || correct.count == ids.count else {
            throw WireError(.inconsistent,
                "eval_result per-example fields disagree: \(ids.count) ids, \(losses.count) losses, \(tokens.count) token counts, \(correct.count) correct flags")
        }
        return Wire.EvalResult(requestID: result.request_id, attempt: result.attempt, lossSum: result.loss_sum,
                               tokenCount: result.token_count, exampleIDs: ids, exampleLosses: losses,
                               exampleTokens: tokens, exampleCorrect: correct, gradient: gradient, seconds: result.seconds)
    }

    private static func scalars<T>(_ pointer: UnsafeMutablePointer<T>?, count: Int, _ field: String) throws -> [T] {
        guard count > 0 else { return [] }
        guard count <= maxRepeated else { throw WireError(.tooLarge, "\(field) has \(count) entries (limit \(maxRepeated))") }
        guard let pointer else { throw WireError(.malformed, "\(field) is null with \(count) entries") }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    private static func messages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, count: Int, _ field: String) throws -> [T] {
        guard count > 0 else { return [] }
        guard count <= maxRepeated else { throw WireError(.tooLarge, "\(field) has \(count) entries (limit \(maxRepeated))") }
        guard let pointer else { throw WireError(.malformed, "\(field) is null with \(count) entries") }
        return try (0..<count).map { try body(pointer[$0], "\(field)[\($0)]") }
    }
}

extension WireEnums {
    static func protoPeerRole(_ role: Wire.PeerRole) -> Brickyard__V1__PeerRole {
        switch role {
        case .mergeWorker: BRICKYARD__V1__PEER_ROLE__PEER_ROLE_MERGE_WORKER
        case .evaluator: BRICKYARD__V1__PEER_ROLE__PEER_ROLE_EVALUATOR
        }
    }

    static func peerRole(_ value: Brickyard__V1__PeerRole) -> Wire.PeerRole? {
        switch value {
        case BRICKYARD__V1__PEER_ROLE__PEER_ROLE_MERGE_WORKER: .mergeWorker
        case BRICKYARD__V1__PEER_ROLE__PEER_ROLE_EVALUATOR: .evaluator
        default: nil
        }
    }

    static func protoEvalKind(_ kind: Wire.EvalKind) -> Brickyard__V1__EvalKind {
        switch kind {
        case .loss: BRICKYARD__V1__EVAL_KIND__EVAL_KIND_LOSS
        case .lossAndAccuracy: BRICKYARD__V1__EVAL_KIND__EVAL_KIND_LOSS_AND_ACCURACY
        case .gradient: BRICKYARD__V1__EVAL_KIND__EVAL_KIND_GRADIENT
        }
    }

    static func evalKind(_ value: Brickyard__V1__EvalKind) -> Wire.EvalKind? {
        switch value {
        case BRICKYARD__V1__EVAL_KIND__EVAL_KIND_LOSS: .loss
        case BRICKYARD__V1__EVAL_KIND__EVAL_KIND_LOSS_AND_ACCURACY: .lossAndAccuracy
        case BRICKYARD__V1__EVAL_KIND__EVAL_KIND_GRADIENT: .gradient
        default: nil
        }
    }
}
