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
    let logger: Logger
    /// Per candidate log file (split modules' restarts): the floats checksummed so far and their running CRC, so a
    /// seeding round checksums only the candidates it appends (`KMeansStateFiles.swift`).
    var candidateLogChecksums: [String: (floats: Int, crc: CRC32C)] = [:]

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
        let expected = CheckpointManifest(jobHash: jobHash, toolVersion: BrickyardVersion.build, taskCount: taskCount)
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
    static func durableWrite(_ bytes: [UInt8], to path: String) throws {
        do {
            try AtomicFile.write(bytes, to: path)
        } catch {
            throw CoordinatorError(.io, "\(error)")
        }
    }

    /// Whole file, or nil if it does not exist.
    static func readIfPresent(_ path: String) throws -> [UInt8]? {
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
