import WireProtocol

/// Inline mode: collects a task's InputChunks for every (input, factor) until all factors are complete. Each
/// factor's reassembler is capped at that factor's announced length, so memory stays at one module.
struct InlineInputs {
    let validated: ValidatedTask
    /// Set when the inputs are those of a split module's block (a k-means round computes once they are in).
    let block: ValidatedBlockTask?
    private var factors: [ChunkReassembler]
    private var completeCount = 0

    init(_ validated: ValidatedTask, block: ValidatedBlockTask? = nil) {
        self.validated = validated
        self.block = block
        factors = validated.task.inputs.flatMap { input in
            [ChunkReassembler(maxTotalBytes: Int(input.aLength)), ChunkReassembler(maxTotalBytes: Int(input.bLength))]
        }
    }

    var isComplete: Bool { completeCount == factors.count }

    /// Whether `chunk` belongs to this task attempt (others are stale and dropped by the caller).
    func owns(_ chunk: Wire.InputChunk) -> Bool {
        chunk.taskID == validated.task.taskID && chunk.attempt == validated.task.attempt
    }

    /// Adds a chunk; throws `WireError` for a chunk that cannot belong to the task (bad index, crc, length).
    mutating func add(_ chunk: Wire.InputChunk) throws {
        let slot = Int(chunk.inputIndex) * 2 + Int(chunk.factor)
        guard Int(chunk.inputIndex) < validated.task.inputs.count, chunk.factor <= 1 else {
            throw WireError(.invalidField, "task \(validated.task.taskID): input chunk for input \(chunk.inputIndex) factor \(chunk.factor) is out of range")
        }
        if try factors[slot].add(chunk) == .complete {
            let length = validated.factorLength(input: Int(chunk.inputIndex), factor: Int(chunk.factor)) ?? -1
            guard factors[slot].receivedBytes == length else {
                throw WireError(.inconsistent, "task \(validated.task.taskID): input \(chunk.inputIndex) factor \(chunk.factor) has \(factors[slot].receivedBytes) bytes, expected \(length)")
            }
            completeCount += 1
        }
    }

    /// Every input's (A, B) stored bytes, in input order; call when `isComplete`.
    func assembled() throws -> [(a: [UInt8], b: [UInt8])] {
        try stride(from: 0, to: factors.count, by: 2).map { (try factors[$0].assembled(), try factors[$0 + 1].assembled()) }
    }
}
