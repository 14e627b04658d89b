#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AdapterIO
import Foundation
import MergeEngine

/// The content hash that ties a checkpoint directory to one job: SHA-256 over the inputs' paths, sizes and
/// modification times, the method and full `MergeSpec`, the module plan (names, shapes, coefficients, tensor
/// offsets), the seed, the output dtype and the tool build (version and output revision, `BrickyardVersion.build`).
/// Any change to these makes old records unusable.
public enum JobFingerprint {
    public static func compute(plan: MergePlan, toolBuild: String = BrickyardVersion.build) throws -> String {
        var hasher = SHA256()
        func field(_ name: String, _ value: String) {
            hasher.update("\(name)=\(value.utf8.count):")
            hasher.update(value)
            hasher.update("\n")
        }
        field("tool", toolBuild)
        field("method", plan.spec.method.rawValue)
        field("spec", String(decoding: try CanonicalJSON.encode(plan.spec), as: UTF8.self))
        field("seed", String(plan.job.seed))
        field("normalize", String(plan.job.normalize))
        field("outputDType", plan.job.outputDType.rawValue)
        field("adapters", String(decoding: try CanonicalJSON.encode(plan.job.adapters), as: UTF8.self))
        for adapter in plan.job.adapters {
            for file in try filesOf(adapter.path) {
                field("file", "\(file.path) size=\(file.size) mtime=\(file.mtimeSeconds).\(file.mtimeNanoseconds)")
            }
        }
        field("modules", String(decoding: try CanonicalJSON.encode(plan.modules), as: UTF8.self))
        return SHA256.hex(hasher.finalize())
    }

    struct FileIdentity {
        var path: String
        var size: Int64
        var mtimeSeconds: Int
        var mtimeNanoseconds: Int
    }

    /// The file itself, or every regular file directly inside a directory (sorted by name).
    static func filesOf(_ path: String) throws -> [FileIdentity] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CoordinatorError(.io, "\(path): cannot stat input: \(String(cString: strerror(errno)))")
        }
        if (info.st_mode & S_IFMT) != S_IFDIR { return [identity(path, info)] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        var files: [FileIdentity] = []
        for name in names {
            let child = path + "/" + name
            var childInfo = stat()
            guard stat(child, &childInfo) == 0, (childInfo.st_mode & S_IFMT) == S_IFREG else { continue }
            files.append(identity(child, childInfo))
        }
        return files
    }

    private static func identity(_ path: String, _ info: stat) -> FileIdentity {
        FileIdentity(path: path, size: Int64(info.st_size), mtimeSeconds: Int(info.st_mtim.tv_sec),
                     mtimeNanoseconds: Int(info.st_mtim.tv_nsec))
    }
}
