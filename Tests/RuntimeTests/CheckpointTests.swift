import BrickyardTestSupport
import AdapterIO
import Foundation
import Logging
import MergeEngine
import Testing
@testable import Coordinator

@Suite struct CheckpointTests {
    let logger = Logger(label: "test.checkpoint")

    static func record(module: String, rank: Int = 2, out: Int = 3, input: Int = 4) -> CheckpointRecord {
        let count = 4 * (out * rank + rank * input)
        let body = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ module.utf8.count) }
        let header = CheckpointRecordHeader(module: module, block: 0, rank: rank, outFeatures: out, inFeatures: input,
                                            bodyBytes: count, stats: ModuleStats(relativeError: 0.25), workerID: "w1",
                                            attempts: 1, seconds: 0.5)
        return CheckpointRecord(header: header, body: body)
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256MatchesStandardVectors(input: String, expected: String) {
        #expect(SHA256.hex(SHA256.hash(Array(input.utf8))) == expected)
    }

    @Test func sha256IncrementalEqualsOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var hasher = SHA256()
        hasher.update(bytes[0..<63]); hasher.update(bytes[63..<130]); hasher.update(bytes[130...])
        #expect(hasher.finalize() == SHA256.hash(bytes))
        // A million 'a': the FIPS long-message vector.
        #expect(SHA256.hex(SHA256.hash(Array(repeating: UInt8(ascii: "a"), count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func recordRoundTrips() throws {
        let record = Self.record(module: "m.q_proj")
        let decoded = try CheckpointRecord.decode(try record.encoded(), path: "x")
        #expect(decoded.header == record.header)
        #expect(decoded.body == record.body)
    }

    @Test(arguments: [1, 10, 37, 60])
    func truncatedOrFlippedRecordIsRejected(cut: Int) throws {
        let bytes = try Self.record(module: "m").encoded()
        #expect(throws: CoordinatorError.self) { try CheckpointRecord.decode(Array(bytes.dropLast(cut)), path: "x") }
        var flipped = bytes
        flipped[cut] ^= 0x40
        #expect(throws: CoordinatorError.self) { try CheckpointRecord.decode(flipped, path: "x") }
    }

    @Test func storeResumesGoodRecordsAndDropsBadOnes() throws {
        let dir = try TestDirectory("ckpt")
        defer { dir.remove() }
        let store = try CheckpointStore(directory: dir.path + "/ck", jobHash: "h1", taskCount: 3, logger: logger)
        let keys = ["a", "b", "c"].map { TaskKey(module: $0) }
        try store.write(Self.record(module: "a"), index: 0)
        try store.write(Self.record(module: "b"), index: 1)
        try store.write(Self.record(module: "c", out: 5), index: 2)
        // Truncate b on disk.
        let bPath = store.recordPath(index: 1, key: keys[1])
        let bBytes = try #require(FileManager.default.contents(atPath: bPath))
        try bBytes.prefix(bBytes.count - 9).write(to: URL(fileURLWithPath: bPath))

        let reopened = try CheckpointStore(directory: dir.path + "/ck", jobHash: "h1", taskCount: 3, logger: logger)
        // c was written with out=5 but the plan says 3: a shape mismatch.
        let finished = reopened.resume(tasks: keys.map { ($0, 3, 4) })
        #expect(Set(finished.keys) == [0])
        #expect(finished[0]?.module == "a")
        #expect(!FileManager.default.fileExists(atPath: bPath))
    }

    @Test func recordUnderWrongNameIsRejected() throws {
        let dir = try TestDirectory("ckpt")
        defer { dir.remove() }
        let store = try CheckpointStore(directory: dir.path, jobHash: "h", taskCount: 1, logger: logger)
        try store.write(Self.record(module: "other"), index: 0)
        #expect(throws: CoordinatorError.self) {
            try store.read(index: 0, key: TaskKey(module: "wanted"), outFeatures: 3, inFeatures: 4)
        }
    }

    @Test func checkpointOfAnotherJobIsRefused() throws {
        let dir = try TestDirectory("ckpt")
        defer { dir.remove() }
        _ = try CheckpointStore(directory: dir.path, jobHash: "first", taskCount: 1, logger: logger)
        let error = #expect(throws: CoordinatorError.self) {
            _ = try CheckpointStore(directory: dir.path, jobHash: "second", taskCount: 1, logger: logger)
        }
        #expect(error?.code == .checkpointMismatch)
        #expect(error?.description.contains("different job") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func fingerprintCoversFilesInsideAdapterDirectories() throws {
        let dir = try TestDirectory("fp-dir")
        defer { dir.remove() }
        let adapter = dir.path + "/adapter"
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: adapter + "/adapter_model.safetensors", contents: Data([1, 2]))
        let job = JobSpec(method: .cat, adapters: [AdapterEntry(path: adapter)])
        let plan = MergePlan(job: job, spec: MergeSpec(method: .cat, rank: 4), modules: [], baseModelNameOrPath: nil,
                             taskType: nil, targetModules: [])
        let before = try JobFingerprint.compute(plan: plan)
        _ = FileManager.default.createFile(atPath: adapter + "/adapter_model.safetensors", contents: Data([1, 2, 3]))
        #expect(try JobFingerprint.compute(plan: plan) != before)
        #expect(throws: CoordinatorError.self) {
            _ = try JobFingerprint.compute(plan: MergePlan(job: JobSpec(method: .cat, adapters: [AdapterEntry(path: dir.path + "/missing")]),
                                                           spec: plan.spec, modules: [], baseModelNameOrPath: nil,
                                                           taskType: nil, targetModules: []))
        }
    }

    @Test func fingerprintChangesWithSeedSpecAndInputs() throws {
        let dir = try TestDirectory("fp")
        defer { dir.remove() }
        let input = dir.path + "/a.safetensors"
        _ = FileManager.default.createFile(atPath: input, contents: Data([1, 2, 3]))
        func plan(seed: UInt64, rank: Int) -> MergePlan {
            let job = JobSpec(method: .cat, seed: seed, adapters: [AdapterEntry(path: input, rank: 2, alpha: 2)])
            return MergePlan(job: job, spec: MergeSpec(method: .cat, rank: rank), modules: [], baseModelNameOrPath: nil,
                             taskType: nil, targetModules: [])
        }
        let base = try JobFingerprint.compute(plan: plan(seed: 1, rank: 4))
        #expect(try JobFingerprint.compute(plan: plan(seed: 1, rank: 4)) == base)
        #expect(try JobFingerprint.compute(plan: plan(seed: 2, rank: 4)) != base)
        #expect(try JobFingerprint.compute(plan: plan(seed: 1, rank: 8)) != base)
        // Another output revision (a build whose kernels write other bytes) is another job.
        #expect(try JobFingerprint.compute(plan: plan(seed: 1, rank: 4), toolBuild: BrickyardVersion.build) == base)
        #expect(try JobFingerprint.compute(plan: plan(seed: 1, rank: 4),
                                           toolBuild: "\(BrickyardVersion.string)+bytes.\(BrickyardVersion.outputRevision + 1)") != base)
        _ = FileManager.default.createFile(atPath: input, contents: Data([1, 2, 3, 4]))
        #expect(try JobFingerprint.compute(plan: plan(seed: 1, rank: 4)) != base)
    }

    /// The fingerprint hashes the options as resolved, defaults included (README, Checkpoints): a job stating every
    /// lego option at its default is the job stating none, and the hashed spec holds every `LegoOptions` field, so a
    /// release that adds an option or changes a default (whose modules may come out with other bytes) refuses an
    /// earlier release's checkpoint instead of mixing modules of the two.
    @Test func fingerprintHashesEveryOptionAtItsResolvedValue() throws {
        let dir = try TestDirectory("fp-defaults")
        defer { dir.remove() }
        let input = dir.path + "/a.safetensors"
        _ = FileManager.default.createFile(atPath: input, contents: Data([1, 2, 3]))
        func plan(_ parameters: [String: ParameterValue]) throws -> MergePlan {
            let job = JobSpec(method: .lego, rank: 4, parameters: parameters,
                              adapters: [AdapterEntry(path: input, rank: 2, alpha: 2)])
            return MergePlan(job: job, spec: try MergeSpec.resolve(job: job, largestInputRank: 2), modules: [],
                             baseModelNameOrPath: nil, taskType: nil, targetModules: [])
        }
        let defaults = LegoOptions()
        let stated: [String: ParameterValue] = [
            "iterations": .int(defaults.iterations), "tolerance": .double(defaults.tolerance),
            "reweight": .string(defaults.reweight.rawValue), "gauge": .string(defaults.gauge.rawValue),
            "basis": .string(defaults.basis.rawValue), "init": .string(defaults.initialization.rawValue),
            "restarts": .int(defaults.restarts), "direction": .string(defaults.direction.rawValue),
            "power_iterations": .int(defaults.powerIterations), "oversample": .int(defaults.oversample),
            "small_pool": .string(defaults.smallPool.rawValue), "refit": .int(defaults.refit),
            "balance": .double(defaults.balance), "balance_rounds": .int(defaults.balanceRounds)]
        let implicit = try plan([:])
        #expect(try JobFingerprint.compute(plan: plan(stated)) == JobFingerprint.compute(plan: implicit))
        let json = try JSONSerialization.jsonObject(with: Data(CanonicalJSON.encode(implicit.spec))) as? [String: Any]
        let lego = try #require(json?["lego"] as? [String: Any])
        let fields = Set(Mirror(reflecting: defaults).children.compactMap(\.label))
        #expect(fields.count == stated.count)  // a new option: state it above too
        #expect(Set(lego.keys) == fields)
        #expect(lego["balance"] as? Double == LegoOptions.defaultBalance)
        // The same job under another default (here `balance`'s before quality4) is another job.
        #expect(try JobFingerprint.compute(plan: plan(["balance": .double(0)])) != JobFingerprint.compute(plan: implicit))
    }
}

/// The record written in pieces and read in place from its mapping.
@Suite struct CheckpointRecordStreamingTests {
    let logger = Logger(label: "test.checkpoint.streaming")

    @Test("a record written in pieces has the bytes of `encoded()`; the mapped read gives the body in place")
    func piecesAndMappedReadAgree() throws {
        let dir = try TestDirectory("ckpt-stream")
        defer { dir.remove() }
        let store = try CheckpointStore(directory: dir.path, jobHash: "h", taskCount: 1, logger: logger)
        let record = CheckpointTests.record(module: "m.up_proj", rank: 3, out: 5, input: 7)
        try store.write(record, index: 0)
        let key = TaskKey(module: "m.up_proj")
        let onDisk = try #require(FileManager.default.contents(atPath: store.recordPath(index: 0, key: key)))
        #expect([UInt8](onDisk) == (try record.encoded()))
        let seen = try store.withRecord(index: 0, key: key, outFeatures: 5, inFeatures: 7) { header, body in
            (header, Array(body))
        }
        #expect(seen?.0 == record.header)
        #expect(seen?.1 == record.body)
        #expect(try store.withRecord(index: 1, key: key, outFeatures: 5, inFeatures: 7) { _, _ in 1 } == nil)
    }

    @Test("the mapped read refuses a flipped bit, a truncated record and a record of another shape", arguments: [0, 1, 2])
    func mappedReadRejectsDamage(damage: Int) throws {
        let dir = try TestDirectory("ckpt-stream")
        defer { dir.remove() }
        let store = try CheckpointStore(directory: dir.path, jobHash: "h", taskCount: 1, logger: logger)
        try store.write(CheckpointTests.record(module: "m"), index: 0)
        let key = TaskKey(module: "m")
        let path = store.recordPath(index: 0, key: key)
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        var out = 3
        switch damage {
        case 0: bytes[bytes.count / 2] ^= 0x10
        case 1: bytes.removeLast(5)
        default: out = 4
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: CoordinatorError.self) {
            _ = try store.withRecord(index: 0, key: key, outFeatures: out, inFeatures: 4) { _, _ in 0 }
        }
    }
}
