import Foundation
import Kernels
import Testing
@testable import WireProtocol

/// The coordinator's read-in-place path for result chunks (`WireCodec.resultChunkView`), the reassembler's
/// no-copy body (`assembledSlice`) and the CRC combination it checks bodies with.
@Suite("Result chunks read in place")
struct ResultChunkViewTests {
    @Test("a result chunk read in place equals the full decoder's, payload bytes included", arguments: [0, 1, 4095, 1 << 16])
    func equalsFullDecode(size: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let chunk = Wire.ResultChunk(taskID: .max, attempt: 7, sequence: 2, total: 3, payload: payload,
                                     crc32c: CRC32C.checksum(payload))
        let frame = WireCodec.encode(.resultChunk(chunk))
        let view = try #require(WireCodec.resultChunkView(frame))
        #expect(view.version == Wire.protocolVersion)
        #expect(view.chunk.taskID == chunk.taskID && view.chunk.attempt == 7 && view.chunk.sequence == 2 && view.chunk.total == 3)
        #expect(Array(view.chunk.payload) == payload && view.chunk.crc32c == chunk.crc32c)
        guard case .resultChunk(let decoded) = try WireCodec.decode(frame).message else { Issue.record("not a chunk"); return }
        #expect(decoded == chunk)
        // Another version is read too (the caller checks it).
        #expect(WireCodec.resultChunkView(WireCodec.encode(.resultChunk(chunk), protocolVersion: 9))?.version == 9)
    }

    @Test("anything but a plain, well-numbered result chunk is left to the full decoder")
    func othersFallBack() throws {
        let good = WireCodec.encode(.resultChunk(Wire.ResultChunk(taskID: 1, attempt: 1, sequence: 0, total: 1, payload: [1, 2],
                                                                  crc32c: 5)))
        #expect(WireCodec.resultChunkView(good) != nil)
        // Other messages, bad numbering, truncations, unknown or repeated fields, garbage.
        #expect(WireCodec.resultChunkView(WireCodec.encode(.heartbeat(sequence: 3))) == nil)
        #expect(WireCodec.resultChunkView(WireCodec.encode(.taskDone(Wire.TaskDone(taskID: 1, attempt: 1, outRank: 0, resultBytes: 0,
                                                                                   resultCRC32C: 0, statsJSON: "", seconds: 0)))) == nil)
        let badNumbering = WireCodec.encode(.resultChunk(Wire.ResultChunk(taskID: 1, attempt: 1, sequence: 3, total: 3,
                                                                          payload: [1], crc32c: 0)))
        #expect(WireCodec.resultChunkView(badNumbering) == nil)
        #expect(throws: WireError.self) { try WireCodec.decode(badNumbering) }
        for cut in 1..<good.count { #expect(WireCodec.resultChunkView(Array(good.prefix(cut))) == nil) }
        #expect(WireCodec.resultChunkView(good + [0x38, 0x01]) == nil)          // unknown envelope field 7
        #expect(WireCodec.resultChunkView(good + [0x08, 0x02]) == nil)          // protocol_version twice
        #expect(WireCodec.resultChunkView([]) == nil)
        #expect(WireCodec.resultChunkView([0xff, 0xff, 0xff]) == nil)
    }

    @Test("CRC-32C of a concatenation from its parts' CRCs equals the direct checksum", arguments: [0, 1, 7, 64, 1000, 65_537])
    func combine(lengthB: Int) {
        let a = (0..<333).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let b = (0..<lengthB).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ 3) }
        #expect(CRC32C.combine(CRC32C.checksum(a), CRC32C.checksum(b), lengthB: b.count) == CRC32C.checksum(a + b))
    }

    @Test("a body is checked from its chunks' CRCs: one chunk is returned in place, several are joined; a wrong length or CRC is caught",
          arguments: [1, 4])
    func assembledSlice(chunks: Int) throws {
        let body = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let pieces = Chunking.resultChunks(of: body, taskID: 1, attempt: 1, maxChunkBytes: (body.count + chunks - 1) / chunks)
        #expect(pieces.count == chunks)
        var reassembler = ChunkReassembler(maxTotalBytes: 1 << 20)
        for piece in pieces.reversed() { _ = try reassembler.add(ResultChunkView(piece)) }
        let crc = CRC32C.checksum(body)
        #expect(Array(try reassembler.assembledSlice(expectedBytes: UInt64(body.count), expectedCRC32C: crc)) == body)
        #expect(throws: WireError.self) { try reassembler.assembledSlice(expectedBytes: UInt64(body.count), expectedCRC32C: crc ^ 1) }
        #expect(throws: WireError.self) { try reassembler.assembledSlice(expectedBytes: UInt64(body.count + 1), expectedCRC32C: crc) }
        // A block partial decodes in place from the slice as from an array.
        let partial = BlockPartial(kind: .lloyd, unitCount: 3, cost: 1.5, counts: [1, 2], sums: [1.5, -2, .pi, -0.0, .leastNonzeroMagnitude])
        let encoded = partial.encoded()
        #expect(try BlockPartial.decode(([0, 0] + encoded)[2...]) == partial)
    }
}
