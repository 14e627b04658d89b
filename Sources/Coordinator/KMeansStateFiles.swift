import AdapterIO
import Foundation
import Kernels
import WireProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The checkpointed state of split modules' k-means (`SplitKMeans`), one file per section of a track
/// (`task-NNNNNN-tT-SECTION.kms`: a restart's run, the final track's selection / principal halves / statistics and
/// refit, the quality rounds) plus, per restart, an append-only log of its seeding candidates
/// (`task-NNNNNN-tT-candidates.kml`, raw Float32 little-endian).
///
/// Why sections: after a round the coordinator writes only what that round changed (`SplitKMeans.checkpoint`), not
/// the whole track: a power round writes û or v̂, not both and not the selection's rank-ones again; a seeding round
/// appends its new candidates to the log instead of rewriting all of them.
///
/// Every round writes exactly one section file, atomically (temp, fsync, rename), so the files on disk are always
/// those of the last reduced round of each track: a coordinator killed at any moment resumes there. A seeding round
/// first appends its candidates to the log (pwrite past the end the state knows, fsync), then writes its section,
/// which records how many floats of the log it covers and their CRC-32C; bytes past that (a round killed between
/// the two writes) are ignored and written again. A section file is magic `BYKSC001`, the log float count (u64), the
/// log CRC (u32), the section's bytes, then a CRC-32C of all that (u32), little-endian.
extension CheckpointStore {
    static let kmeansSectionMagic: [UInt8] = Array("BYKSC001".utf8)
    static let kmeansSectionSuffix = ".kms"
    static let kmeansLogSuffix = "-candidates.kml"

    private static func kmeansPrefix(index: Int) -> String {
        let number = String(index)
        return "task-\(String(repeating: "0", count: max(0, 6 - number.count)) + number)-t"
    }

    /// The file of one section of one track of split module `index`.
    public func kmeansSectionPath(index: Int, track: Int, section: SplitKMeans.Section) -> String {
        directory + "/" + Self.kmeansPrefix(index: index) + "\(track)-\(section.name)" + Self.kmeansSectionSuffix
    }

    /// The seeding-candidate log of restart `track` of split module `index`.
    public func kmeansLogPath(index: Int, track: Int) -> String {
        directory + "/" + Self.kmeansPrefix(index: index) + "\(track)" + Self.kmeansLogSuffix
    }

    /// Writes what a reduced round changed (`SplitKMeans.checkpoint(track:)`): its new candidates to the log, then
    /// its section. Returns the bytes written.
    @discardableResult
    public func writeKMeansCheckpoint(_ checkpoint: SplitKMeans.TrackCheckpoint, index: Int) throws -> Int {
        let logPath = kmeansLogPath(index: index, track: checkpoint.track)
        let log = checkpoint.log, kept = min(max(0, checkpoint.logKept), log.count)
        var logCRC = CRC32C()
        var written = 0
        if !log.isEmpty {
            if let cached = candidateLogChecksums[logPath], cached.floats == kept {
                logCRC = cached.crc
            } else {
                Self.littleEndianBytes(log[0..<kept]) { logCRC.update($0) }
            }
            try Self.littleEndianBytes(log[kept...]) { fresh in
                try Self.writeAt(path: logPath, fresh, offset: 4 * kept)
                logCRC.update(fresh)
                written += fresh.count
            }
            candidateLogChecksums[logPath] = (log.count, logCRC)
        }
        var header = Self.kmeansSectionMagic
        for shift in stride(from: 0, to: 64, by: 8) { header.append(UInt8(truncatingIfNeeded: UInt64(log.count) >> UInt64(shift))) }
        let logValue = log.isEmpty ? 0 : logCRC.value
        for shift in stride(from: 0, to: 32, by: 8) { header.append(UInt8(truncatingIfNeeded: logValue >> UInt32(shift))) }
        var crc = CRC32C()
        header.withUnsafeBytes { crc.update($0) }
        checkpoint.bytes.withUnsafeBytes { crc.update($0) }
        let value = crc.value
        let trailer = (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(8 * $0)) }
        do {
            try AtomicFile.write(to: kmeansSectionPath(index: index, track: checkpoint.track, section: checkpoint.section)) { append in
                try header.withUnsafeBytes(append)
                try checkpoint.bytes.withUnsafeBytes(append)
                try trailer.withUnsafeBytes(append)
            }
        } catch {
            throw CoordinatorError(.io, "\(error)")
        }
        written += header.count + checkpoint.bytes.count + trailer.count
        if log.isEmpty && candidateLogChecksums.removeValue(forKey: logPath) != nil { unlink(logPath) }
        return written
    }

    /// Every section and candidate log of split module `index`, verified (empty when it has none). Throws a
    /// `.corruptRecord` error naming the file and what is wrong when one is damaged, truncated, of another layout or
    /// not covering what its section needs: the caller then starts the module's rounds over.
    public func readKMeansCheckpoint(index: Int) throws -> (sections: [Int: [SplitKMeans.Section: [UInt8]]], logs: [Int: [Float]]) {
        var sections: [Int: [SplitKMeans.Section: [UInt8]]] = [:], logs: [Int: [Float]] = [:]
        let prefix = Self.kmeansPrefix(index: index)
        for name in kmeansFiles(index: index) where !name.hasSuffix(Self.kmeansLogSuffix) {
            let path = directory + "/" + name
            let stem = name.dropFirst(prefix.count)
            guard stem.hasSuffix(Self.kmeansSectionSuffix), let dash = stem.firstIndex(of: "-"),
                  let track = Int(stem[..<dash]),
                  let section = SplitKMeans.Section(name: String(stem[stem.index(after: dash)...].dropLast(Self.kmeansSectionSuffix.count))) else {
                throw CoordinatorError(.corruptRecord, "\(path): not a k-means state file of this version")
            }
            guard let bytes = try Self.readIfPresent(path) else { continue }
            let magic = Self.kmeansSectionMagic.count
            var crc = CRC32C()
            if bytes.count >= magic + 16 { bytes[0..<(bytes.count - 4)].withUnsafeBytes { crc.update($0) } }
            guard bytes.count >= magic + 16, Array(bytes[0..<magic]) == Self.kmeansSectionMagic,
                  crc.value == Self.u32(bytes, at: bytes.count - 4) else {
                throw CoordinatorError(.corruptRecord, "\(path): k-means state damaged or truncated (\(bytes.count) bytes, checksum or magic wrong)")
            }
            let logFloats = Int(Self.u32(bytes, at: magic)) | Int(Self.u32(bytes, at: magic + 4)) << 32
            let logCRC = Self.u32(bytes, at: magic + 8)
            sections[track, default: [:]][section] = Array(bytes[(magic + 12)..<(bytes.count - 4)])
            if logFloats > 0 { logs[track] = try readCandidateLog(index: index, track: track, floats: logFloats, crc: logCRC) }
        }
        return (sections, logs)
    }

    /// The first `floats` candidates of a restart's log, checked against the CRC its section recorded.
    private func readCandidateLog(index: Int, track: Int, floats: Int, crc expected: UInt32) throws -> [Float] {
        let path = kmeansLogPath(index: index, track: track)
        guard let bytes = try Self.readIfPresent(path), bytes.count / 4 >= floats else {
            throw CoordinatorError(.corruptRecord, "\(path): candidate log missing or truncated (its state needs \(floats) floats)")
        }
        var crc = CRC32C()
        bytes[0..<(4 * floats)].withUnsafeBytes { crc.update($0) }
        guard crc.value == expected else {
            throw CoordinatorError(.corruptRecord, "\(path): candidate log damaged (checksum of its first \(floats) floats wrong)")
        }
        candidateLogChecksums[path] = (floats, crc)
        return (0..<floats).map { Float(bitPattern: Self.u32(bytes, at: 4 * $0)) }
    }

    /// Removes every k-means file of split module `index` (its rounds then start over, or it finished).
    public func removeKMeansState(index: Int) {
        for name in kmeansFiles(index: index) {
            candidateLogChecksums[directory + "/" + name] = nil
            unlink(directory + "/" + name)
        }
    }

    /// Names of module `index`'s k-means files (any layout: an older one is refused when read, removed with the rest).
    func kmeansFiles(index: Int) -> [String] {
        let prefix = Self.kmeansPrefix(index: index)
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(prefix) }.sorted()
    }

    private static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << UInt32(8 * $1) }
    }

    /// `values` as little-endian bytes, in place where the machine is little-endian.
    private static func littleEndianBytes<R>(_ values: ArraySlice<Float>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        #if _endian(little)
        return try values.withUnsafeBytes(body)
        #else
        return try values.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
        #endif
    }

    /// pwrite of `bytes` at `offset` into `path` (created if absent, never truncated), then fsync.
    private static func writeAt(path: String, _ bytes: UnsafeRawBufferPointer, offset: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CoordinatorError(.io, "\(path): cannot open candidate log: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count, let base = bytes.baseAddress {
            let wrote = pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
            if wrote < 0 && errno == EINTR { continue }
            guard wrote > 0 else { throw CoordinatorError(.io, "\(path): write failed: \(String(cString: strerror(errno)))") }
            done += wrote
        }
        guard fsync(fd) == 0 else { throw CoordinatorError(.io, "\(path): fsync failed: \(String(cString: strerror(errno)))") }
    }
}
