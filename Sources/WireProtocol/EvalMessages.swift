/// Swift mirrors of the evaluator messages of proto/brickyard.proto (envelope fields 30–49): what an adaptive
/// merge or `brickyard eval` coordinator asks an evaluator (a process holding the base model) and what it answers.
extension Wire {
    /// Which kind of peer says Hello. A merge coordinator serves only merge workers, an adapt/eval coordinator
    /// only evaluators.
    public enum PeerRole: String, Sendable, Equatable, CustomStringConvertible {
        case mergeWorker = "merge worker"
        case evaluator

        public var description: String { rawValue }
    }

    /// What an evaluation request asks for.
    public enum EvalKind: Sendable, Equatable {
        /// Loss sums and per-example losses.
        case loss
        /// Loss plus exact match of greedy decoding against the completion.
        case lossAndAccuracy
        /// Loss sums plus d loss_sum / dλ.
        case gradient
    }

    /// One training or validation example: `prompt` + `completion`, or `messagesJSON` (a chat, JSON array).
    public struct Example: Sendable, Equatable, Hashable, Codable {
        /// Fixed by the coordinator (index in its example list); evaluators echo it.
        public var id: UInt32
        public var prompt: String
        public var completion: String
        public var messagesJSON: String

        public init(id: UInt32, prompt: String = "", completion: String = "", messagesJSON: String = "") {
            self.id = id; self.prompt = prompt; self.completion = completion; self.messagesJSON = messagesJSON
        }
    }

    /// One PEFT adapter directory an evaluator loads (cached by `contentHash`).
    public struct AdapterRef: Sendable, Equatable, Hashable, Codable {
        public var path: String
        /// SHA-256 (hex) of adapter_model.safetensors then adapter_config.json.
        public var contentHash: String

        public init(path: String, contentHash: String) {
            self.path = path; self.contentHash = contentHash
        }
    }

    /// Coordinator → evaluator: evaluate the base model with ΔW_m = Σ_i λ[m, i] · s_i · B_i A_i on `examples`.
    /// `coefficients` is module-major (`[m * adapters.count + i]`); empty means λ = 1, no adapters the base alone.
    public struct EvalRequest: Sendable, Equatable {
        public var jobID: String
        public var requestID: UInt64
        public var attempt: UInt32
        public var kind: EvalKind
        public var adapters: [AdapterRef]
        public var modules: [String]
        public var coefficients: [Double]
        public var examples: [Example]
        /// Accuracy only: greedy decoding budget (0 = completion length + 8).
        public var maxNewTokens: UInt32

        public init(jobID: String, requestID: UInt64, attempt: UInt32, kind: EvalKind, adapters: [AdapterRef],
                    modules: [String], coefficients: [Double], examples: [Example], maxNewTokens: UInt32 = 0) {
            self.jobID = jobID; self.requestID = requestID; self.attempt = attempt; self.kind = kind
            self.adapters = adapters; self.modules = modules; self.coefficients = coefficients
            self.examples = examples; self.maxNewTokens = maxNewTokens
        }
    }

    /// Evaluator → coordinator: per-request sums, so answers reduce in a fixed order whoever computed them.
    public struct EvalResult: Sendable, Equatable {
        public var requestID: UInt64
        public var attempt: UInt32
        /// Σ of the natural-log NLL over completion tokens of every example.
        public var lossSum: Double
        public var tokenCount: UInt64
        public var exampleIDs: [UInt32]
        public var exampleLosses: [Double]
        public var exampleTokens: [UInt32]
        /// Loss-and-accuracy requests only.
        public var exampleCorrect: [Bool]
        /// Gradient requests only: d lossSum / dλ, the request's coefficient layout.
        public var gradient: [Double]
        public var seconds: Double

        public init(requestID: UInt64, attempt: UInt32, lossSum: Double, tokenCount: UInt64, exampleIDs: [UInt32] = [],
                    exampleLosses: [Double] = [], exampleTokens: [UInt32] = [], exampleCorrect: [Bool] = [],
                    gradient: [Double] = [], seconds: Double = 0) {
            self.requestID = requestID; self.attempt = attempt; self.lossSum = lossSum; self.tokenCount = tokenCount
            self.exampleIDs = exampleIDs; self.exampleLosses = exampleLosses; self.exampleTokens = exampleTokens
            self.exampleCorrect = exampleCorrect; self.gradient = gradient; self.seconds = seconds
        }
    }

    /// Evaluator → coordinator: the request could not be answered.
    public struct EvalFailed: Sendable, Equatable {
        public var requestID: UInt64
        public var attempt: UInt32
        public var error: String
        public var retryable: Bool

        public init(requestID: UInt64, attempt: UInt32, error: String, retryable: Bool) {
            self.requestID = requestID; self.attempt = attempt; self.error = error; self.retryable = retryable
        }
    }
}
