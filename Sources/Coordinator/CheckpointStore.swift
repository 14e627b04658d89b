import AdapterIO
import Foundation
import Logging
import WireProtocol

/// `manifest.json` of a checkpoint directory: which job the records belong to.
public struct CheckpointManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1
    public var format: Int
    public var jobHash: String
    public var toolVersion: String
    public var taskCount: Int

    public init(format: Int = CheckpointManifest.currentFormat, jobHash: String, toolVersion: String, taskCount: Int) {
        self.format = format
        self.jobHash = jobHash
        self.toolVersion = toolVersion
        self.taskCount = taskCount
    }
}

/// A directory of finished tasks: `manifest.json` plus one record file per finished task, each written
/// atomically. Opening it for a job either adopts it (same job hash) or refuses it; resuming verifies every
/// record and forgets (deletes) the ones that fail, so their tasks are computed again.
public final class CheckpointStore: @unchecked Sendable {
    // @unchecked: used from the coordinator's single loop thread only; immutable apart from the files.
    public let directory: String
    public let manifest: CheckpointManifest
    private let logger: Logger

    /// Creates the directory and its manifest, or checks an existing manifest against `jobHash`.
    public init(directory: String, jobHash: String, taskCount: Int, logger: Logger) throws {
        self.directory = directory
        self.logger = logger
        let manifestPath = directory + "/manifest.json"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CoordinatorError(.io, "\(directory): cannot create checkpoint directory: \(error.localizedDescription)")
        }
        let expected = CheckpointManifest(jobHash: jobHash, toolVersion: BrickyardVersion.string, taskCount: taskCount)
        if let bytes = try Self.readIfPresent(manifestPath) {
            let found: CheckpointManifest
            do {
                found = try CanonicalJSON.decode(CheckpointManifest.self, bytes)
            } catch {
                throw CoordinatorError(.checkpointMismatch, "\(manifestPath): unreadable checkpoint manifest; use another --checkpoint directory or delete this one")
            }
            guard found.jobHash == jobHash, found.format == CheckpointManifest.currentFormat else {
                throw CoordinatorError(.checkpointMismatch,
                    "\(directory): checkpoint belongs to a different job (hash \(found.jobHash.prefix(12))…, this job \(jobHash.prefix(12))…); use another --checkpoint directory or delete it")
            }
            manifest = found
        } else {
            try Self.durableWrite(try CanonicalJSON.encode(expected), to: manifestPath)
            manifest = expected
        }
    }

    /// The record file of a task. The plan index keeps names short and ordered; the header inside names the module.
    public func recordPath(index: Int, key: TaskKey) -> String {
        let number = String(index)
        let padded = String(repeating: "0", count: max(0, 6 - number.count)) + number
        return directory + "/task-\(padded)-b\(key.block).rec"
    }

    public func write(_ record: CheckpointRecord, index: Int) throws {
        do {
            try AtomicFile.write(to: recordPath(index: index, key: record.header.key)) { append in try record.write(append) }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError(.io, "\(error)")
        }
    }

    /// Maps one record, verifies it against the plan's expectations (digest, key, shape) and hands its header and
    /// body bytes (B' then A', little-endian Float32, in place in the mapping) to `body`; nil if absent.
    public func withRecord<R>(index: Int, key: TaskKey, outFeatures: Int, inFeatures: Int,
                              _ body: (CheckpointRecordHeader, UnsafeRawBufferPointer) throws -> R) throws -> R? {
        let path = recordPath(index: index, key: key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw CoordinatorError(.io, "\(path): cannot map checkpoint record: \(error)")
        }
        return try file.withBytes { raw in
            let (header, range) = try CheckpointRecord.verify(raw, path: path)
            try Self.check(header, path: path, key: key, outFeatures: outFeatures, inFeatures: inFeatures)
            return try body(header, UnsafeRawBufferPointer(rebasing: raw[range]))
        }
    }

    /// The k-means state file of one track of a split module (a restart, the final statistics round, or the quality
    /// rounds: `SplitKMeans.encoded(track:)`), as of the track's last reduced round.
    public func kmeansStatePath(index: Int, track: Int) -> String {
        directory + "/" + Self.kmeansStatePrefix(index: index) + "\(track)-kmeans.state"
    }

    private static func kmeansStatePrefix(index: Int) -> String {
        let number = String(index)
        return "task-\(String(repeating: "0", count: max(0, 6 - number.count)) + number)-t"
    }

    /// Writes one track's k-means state atomically (temp, fsync, rename), with a CRC-32C trailer. Only the track whose
    /// round was reduced is written (a restart's state is up to ~12 MB of seeding candidates for an MLP module), so
    /// a round costs the size of what changed, not of every restart's state; the tracks are independent until the
    /// kept restart is chosen, which is derived again on reading.
    public func writeKMeansState(_ state: [UInt8], index: Int, track: Int) throws {
        var crc = CRC32C()
        crc.update(state[...])
        var bytes = state
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: crc.value >> UInt32(shift))) }
        try Self.durableWrite(bytes, to: kmeansStatePath(index: index, track: track))
    }

    /// The verified state of one track, or nil if absent; a damaged file is logged, deleted and ignored (that
    /// track's rounds start over).
    public func readKMeansState(index: Int, track: Int) -> [UInt8]? {
        let path = kmeansStatePath(index: index, track: track)
        guard let bytes = try? Self.readIfPresent(path) else { return nil }
        var crc = CRC32C()
        if bytes.count > 4 { crc.update(bytes[0..<(bytes.count - 4)]) }
        let stored = bytes.count > 4 ? (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[bytes.count - 4 + $1]) << UInt32(8 * $1) } : 0
        guard bytes.count > 4, crc.value == stored else {
            logger.warning("k-means state rejected (checksum); the track's rounds start over", metadata: ["path": "\(path)"])
            unlink(path)
            return nil
        }
        return Array(bytes[0..<(bytes.count - 4)])
    }

    /// Every verified track state of a split module, by track (tracks without a file are absent).
    public func readKMeansStates(index: Int) -> [Int: [UInt8]] {
        var states: [Int: [UInt8]] = [:]
        for track in kmeansTracks(index: index) {
            if let bytes = readKMeansState(index: index, track: track) { states[track] = bytes }
        }
        return states
    }

    /// Tracks that have a state file.
    func kmeansTracks(index: Int) -> [Int] {
        let prefix = Self.kmeansStatePrefix(index: index), suffix = "-kmeans.state"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
            return Int(name.dropFirst(prefix.count).dropLast(suffix.count))
        }.sorted()
    }

    public func removeKMeansState(index: Int) {
        for track in kmeansTracks(index: index) { unlink(kmeansStatePath(index: index, track: track)) }
    }

    /// Reads and verifies one record against the plan's expectations; nil if absent.
    public func read(index: Int, key: TaskKey, outFeatures: Int, inFeatures: Int) throws -> CheckpointRecord? {
        let path = recordPath(index: index, key: key)
        guard let bytes = try Self.readIfPresent(path) else { return nil }
        let record = try CheckpointRecord.decode(bytes, path: path)
        try Self.check(record.header, path: path, key: key, outFeatures: outFeatures, inFeatures: inFeatures)
        return record
    }

    private static func check(_ header: CheckpointRecordHeader, path: String, key: TaskKey, outFeatures: Int,
                              inFeatures: Int) throws {
        guard header.key == key else {
            throw CoordinatorError(.corruptRecord, "\(path): record is for \(header.key), plan expects \(key)")
        }
        guard header.outFeatures == outFeatures, header.inFeatures == inFeatures, header.rank >= 0 else {
            throw CoordinatorError(.corruptRecord,
                "\(path): record shape out=\(header.outFeatures) in=\(header.inFeatures) does not match plan out=\(outFeatures) in=\(inFeatures) for \(key)")
        }
    }

    /// Verifies every existing record of `tasks` (plan order); returns the headers of the good ones by index.
    /// Bad records are logged and deleted so their tasks are recomputed; stray temp files are removed.
    public func resume(tasks: [(key: TaskKey, outFeatures: Int, inFeatures: Int)]) -> [Int: CheckpointRecordHeader] {
        removeTemporaryFiles()
        var finished: [Int: CheckpointRecordHeader] = [:]
        for (index, task) in tasks.enumerated() {
            do {
                if let record = try read(index: index, key: task.key, outFeatures: task.outFeatures, inFeatures: task.inFeatures) {
                    finished[index] = record.header
                }
            } catch {
                logger.warning("checkpoint record rejected; task will be recomputed",
                               metadata: ["module": "\(task.key)", "error": "\(error)"])
                unlink(recordPath(index: index, key: task.key))
            }
        }
        return finished
    }

    /// Atomic write (AdapterIO's temp + fsync + rename + directory fsync), failures reported as `.io`.
    private static func durableWrite(_ bytes: [UInt8], to path: String) throws {
        do {
            try AtomicFile.write(bytes, to: path)
        } catch {
            throw CoordinatorError(.io, "\(error)")
        }
    }

    /// Whole file, or nil if it does not exist.
    private static func readIfPresent(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoordinatorError(.io, "\(path): cannot read")
        }
        return [UInt8](data)
    }

    /// Removes the whole directory (used for the temporary checkpoint after a successful run).
    public func removeAll() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func removeTemporaryFiles() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") {
            unlink(directory + "/" + name)
        }
    }
}
