import Foundation
import MergeEngine
import Testing
@testable import WireProtocol

@Suite("ZeroMQ transport")
struct TransportTests {
    /// A ROUTER bound to an ephemeral loopback port and a DEALER connected to it.
    private func pair(identity: [UInt8]) throws -> (context: ZMQContext, router: ZMQSocket, dealer: ZMQSocket) {
        let context = try ZMQContext()
        let router = try ZMQSocket.router(context: context, lingerMilliseconds: 0)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint()
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let dealer = try ZMQSocket.dealer(context: context, identity: identity, lingerMilliseconds: 0)
        try dealer.connect(endpoint)
        return (context, router, dealer)
    }

    @Test("ROUTER/DEALER round trip of multipart messages, large and empty frames")
    func roundTrip() throws {
        let (_, router, dealer) = try pair(identity: Array("worker-1".utf8))
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try dealer.send([big, []])
        let received = try #require(try router.receive(timeoutMilliseconds: 5_000))
        #expect(received.count == 3)
        #expect(received[0] == Array("worker-1".utf8))
        #expect(received[1] == big)
        #expect(received[2] == [])

        try router.send(.heartbeat(sequence: 7), to: Array("worker-1".utf8))
        let reply = try #require(try dealer.receive(timeoutMilliseconds: 5_000))
        #expect(reply.count == 1)
        #expect(try WireCodec.decode(reply[0]).message == .heartbeat(sequence: 7))
    }

    @Test("a message with too many frames is drained and cut to a shape no protocol message has")
    func tooManyFrames() throws {
        let (_, router, dealer) = try pair(identity: Array("flood".utf8))
        try dealer.send((0..<40).map { [UInt8($0)] })
        try dealer.send([[7]])
        let flood = try #require(try router.receive(timeoutMilliseconds: 5_000))
        #expect(flood.count == 17)
        #expect(flood.last == [])
        #expect(RoutedFrames(flood) == nil)
        let next = try #require(try router.receive(timeoutMilliseconds: 5_000))
        #expect(next == [Array("flood".utf8), [7]])
    }

    @Test("a ROUTER send to an unknown peer is a typed hostUnreachable error")
    func unknownPeer() throws {
        let (_, router, _) = try pair(identity: Array("known".utf8))
        do {
            try router.send(.heartbeat(sequence: 1), to: Array("nobody".utf8))
            Issue.record("send to an unknown peer succeeded")
        } catch let error as ZMQError {
            #expect(error.kind == .hostUnreachable)
            #expect(error.description.contains("zmq_msg_send"))
        }
    }

    @Test("receive with a timeout returns nil when nothing arrives; dontWait returns nil at once")
    func timeouts() throws {
        let (_, router, dealer) = try pair(identity: Array("idle".utf8))
        #expect(try router.receive(timeoutMilliseconds: 20) == nil)
        #expect(try dealer.receive(dontWait: true) == nil)
    }

    @Test("poll reports which of several sockets is readable")
    func pollSeveral() throws {
        let (context, router, dealer) = try pair(identity: Array("p".utf8))
        let other = try ZMQSocket.dealer(context: context, lingerMilliseconds: 0)
        try other.connect(try router.lastEndpoint())
        try dealer.send([[1, 2, 3]])
        var flags: [Bool] = [false, false, false]
        for _ in 0..<50 where !flags[0] { flags = try ZMQPoll.readable([router, dealer, other], timeoutMilliseconds: 100) }
        #expect(flags == [true, false, false])
    }

    @Test("bad endpoints and closed sockets give errors with errno text")
    func errors() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, kind: .dealer, lingerMilliseconds: 0)
        #expect(throws: ZMQError.self) { try socket.bind("nonsense://x") }
        socket.close()
        socket.close()
        #expect(socket.isClosed)
        #expect(throws: ZMQError.self) { try socket.send([[1]]) }
    }

    @Test("ipc endpoints in a per-test temp directory work too")
    func ipc() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("brickyard-ipc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let context = try ZMQContext()
        let router = try ZMQSocket.router(context: context, lingerMilliseconds: 0)
        try router.bind("ipc://\(directory.path)/coordinator")
        let dealer = try ZMQSocket.dealer(context: context, identity: [9], lingerMilliseconds: 0)
        try dealer.connect("ipc://\(directory.path)/coordinator")
        try dealer.send(.disconnect(reason: "bye"))
        let frames = try #require(try router.receive(timeoutMilliseconds: 5_000))
        let routed = try #require(RoutedFrames(frames))
        #expect(routed.peer == [9])
        #expect(try WireCodec.decode(routed.payload).message == .disconnect(reason: "bye"))
    }
}

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("known vectors", arguments: [
        ("", 0x0000_0000 as UInt32),
        ("123456789", 0xE306_9283),
        ("a", 0xC1D0_4330),
        ("The quick brown fox jumps over the lazy dog", 0x2262_0404),
    ])
    func vectors(text: String, expected: UInt32) {
        #expect(CRC32C.checksum(Array(text.utf8)) == expected)
    }

    @Test("32 zero bytes and 32 0xFF bytes (RFC 3720 B.4)")
    func rfcVectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test("incremental updates in any split equal the one-shot checksum")
    func incremental() {
        let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 7, 8, 9, 500, 999, 1_000] {
            var crc = CRC32C()
            crc.update(bytes[0..<split])
            crc.update(bytes[split...])
            #expect(crc.value == whole)
        }
    }
}

@Suite("Chunking and reassembly")
struct ChunkingTests {
    private let body = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }

    @Test("chunks are bounded, numbered, and cover the body", arguments: [1, 999, 4_096, 10_000, 1 << 22])
    func split(maxChunkBytes: Int) throws {
        let chunks = Chunking.resultChunks(of: body, taskID: 5, attempt: 2, maxChunkBytes: maxChunkBytes)
        #expect(chunks.count == (body.count + maxChunkBytes - 1) / maxChunkBytes)
        #expect(chunks.allSatisfy { $0.payload.count <= maxChunkBytes && $0.total == UInt32(chunks.count) })
        #expect(chunks.enumerated().allSatisfy { $0.element.sequence == UInt32($0.offset) })
        #expect(chunks.flatMap(\.payload) == body)
    }

    @Test("an empty body is one empty chunk")
    func empty() throws {
        let chunks = Chunking.resultChunks(of: [], taskID: 1, attempt: 1, maxChunkBytes: 10)
        #expect(chunks.count == 1)
        var reassembler = ChunkReassembler(maxTotalBytes: 10)
        #expect(try reassembler.add(chunks[0]) == .complete)
        #expect(try reassembler.assembled(expectedBytes: 0, expectedCRC32C: 0) == [])
    }

    @Test("out-of-order and duplicate chunks reassemble exactly once")
    func outOfOrderAndDuplicates() throws {
        let chunks = Chunking.resultChunks(of: body, taskID: 5, attempt: 2, maxChunkBytes: 1_000)
        var reassembler = ChunkReassembler(maxTotalBytes: body.count)
        var order = Array(chunks.indices.reversed())
        order.insert(3, at: 2)
        var outcomes: [ChunkReassembler.Outcome] = []
        for index in order { outcomes.append(try reassembler.add(chunks[index])) }
        #expect(outcomes.filter { $0 == .duplicate }.count == 1)
        #expect(outcomes.last == .complete)
        #expect(try reassembler.add(chunks[0]) == .duplicate)
        #expect(try reassembler.assembled(expectedBytes: UInt64(body.count), expectedCRC32C: CRC32C.checksum(body)) == body)
    }

    @Test("a chunk with a wrong crc, an inconsistent total or out-of-range sequence is refused")
    func corrupt() throws {
        let chunks = Chunking.resultChunks(of: body, taskID: 5, attempt: 2, maxChunkBytes: 1_000)
        var reassembler = ChunkReassembler(maxTotalBytes: body.count)
        var bad = chunks[1]
        bad.payload[0] ^= 1
        #expect(throws: WireError.self) { try reassembler.add(bad) }
        #expect(try reassembler.add(chunks[0]) == .accepted)
        var wrongTotal = chunks[2]
        wrongTotal.total += 1
        #expect(throws: WireError.self) { try reassembler.add(wrongTotal) }
        #expect(throws: WireError.self) {
            try reassembler.add(sequence: 10, total: 10, payload: [], crc32c: 0)
        }
        #expect(!reassembler.isComplete)
        #expect(throws: WireError.self) { try reassembler.assembled() }
    }

    @Test("a body beyond the size limit is refused, and a wrong announced length or crc is caught")
    func limits() throws {
        let chunks = Chunking.resultChunks(of: body, taskID: 5, attempt: 2, maxChunkBytes: 4_000)
        var small = ChunkReassembler(maxTotalBytes: 5_000)
        _ = try small.add(chunks[0])
        #expect(throws: WireError.self) { try small.add(chunks[1]) }

        var reassembler = ChunkReassembler(maxTotalBytes: body.count)
        for chunk in chunks { _ = try reassembler.add(chunk) }
        #expect(throws: WireError.self) { try reassembler.assembled(expectedBytes: 1, expectedCRC32C: CRC32C.checksum(body)) }
        #expect(throws: WireError.self) { try reassembler.assembled(expectedBytes: UInt64(body.count), expectedCRC32C: 1) }
    }

    @Test("input chunks carry their factor and crc")
    func inputChunks() throws {
        let chunks = Chunking.inputChunks(of: body, taskID: 1, attempt: 1, inputIndex: 4, factor: 1, maxChunkBytes: 3_000)
        #expect(chunks.count == 4)
        var reassembler = ChunkReassembler(maxTotalBytes: body.count)
        for chunk in chunks.reversed() { _ = try reassembler.add(chunk) }
        #expect(try reassembler.assembled() == body)
        #expect(chunks.allSatisfy { $0.inputIndex == 4 && $0.factor == 1 })
    }
}

@Suite("Result body")
struct ResultBodyTests {
    @Test("encode → decode returns the same factors; layout is B' then A', little-endian")
    func roundTrip() throws {
        let result = ModuleResult(name: "m", rank: 2, outFeatures: 3, inFeatures: 4,
                                  b: [1, 2, 3, 4, 5, 6], a: [-1, -2, -3, -4, 0.5, 0.25, 1e-30, .greatestFiniteMagnitude],
                                  stats: ModuleStats(relativeError: 0))
        let bytes = ResultBody.encode(result)
        #expect(bytes.count == 4 * (6 + 8))
        #expect(Array(bytes[0..<4]) == [0x00, 0x00, 0x80, 0x3F])  // 1.0f
        #expect(Array(bytes[24..<28]) == [0x00, 0x00, 0x80, 0xBF])  // -1.0f: A' starts after B'
        let decoded = try ResultBody.decode(bytes, name: "m", outFeatures: 3, inFeatures: 4, rank: 2, stats: result.stats)
        #expect(decoded.b == result.b)
        #expect(decoded.a == result.a)
        #expect(decoded.rank == 2 && decoded.outFeatures == 3 && decoded.inFeatures == 4)
    }

    @Test("wrong lengths and absurd shapes are errors", arguments: [
        (3, 4, 2, 55), (3, 4, 2, 57), (3, 4, 3, 56), (-1, 4, 2, 0), (Int.max, Int.max, 2, 0),
        (Int.max / 2, Int.max / 2, 1, 0), (Int.max / 8, Int.max / 8, 1, 0),
    ])
    func badLengths(out: Int, inFeatures: Int, rank: Int, byteCount: Int) {
        #expect(throws: WireError.self) {
            try ResultBody.decode([UInt8](repeating: 0, count: byteCount), name: "m", outFeatures: out,
                                  inFeatures: inFeatures, rank: rank, stats: ModuleStats(relativeError: 0))
        }
    }
}
