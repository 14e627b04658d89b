#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AdapterIO
import Foundation

/// Writes a merge's output directory: adapter_config.json + adapter_model.safetensors (via AdapterIO's streaming
/// PEFT writer) + merge-report.json, all or nothing.
///
/// Atomicity: the PEFT writer builds the adapter in a temporary directory and renames it to a staging directory
/// next to the destination; the report is written into it and fsynced; the staging directory is then renamed onto
/// the destination and the parent fsynced. On any error the staging directory is removed and the destination is
/// untouched. An existing destination is accepted when it is an empty directory; a non-empty one is replaced only
/// with `overwrite` (the CLI's `--force`), otherwise the job is refused before any work starts
/// (`checkDestination`).
public enum OutputAssembler {
    /// File name of the report inside the output directory.
    public static let reportFileName = "merge-report.json"

    /// Refuses a destination that would be clobbered (call before merging, to fail fast).
    public static func checkDestination(_ directory: String, overwrite: Bool) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
            var parentIsDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &parentIsDirectory) else {
                throw MergeError("\(directory): the parent directory \(parent) does not exist")
            }
            // Found now, not after the merge: the staging directory is created next to the destination at the end.
            guard parentIsDirectory.boolValue else { throw MergeError("\(directory): \(parent) is not a directory") }
            guard access(parent, W_OK) == 0 else {
                throw MergeError("\(directory): cannot write into the parent directory \(parent): \(String(cString: strerror(errno)))")
            }
            return
        }
        guard isDirectory.boolValue else { throw MergeError("\(directory): exists and is not a directory") }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        if !contents.isEmpty && !overwrite {
            throw MergeError("\(directory): exists and is not empty (use --force to replace it)")
        }
    }

    /// The output modules' shapes, for the PEFT writer's up-front declaration.
    public static func outputModules(_ results: [ModuleResult]) -> [PeftOutputModule] {
        results.map { PeftOutputModule(name: $0.name, rank: $0.rank, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures) }
    }

    /// Streams the output: `modules` declares every module's final shape (in module order); `produce` is called once
    /// and must hand each module's result, in that order, to the `write` callback it receives (so a runtime can feed
    /// results from checkpoint records one at a time).
    public static func assemble(plan: MergePlan, to directory: String, overwrite: Bool, modules: [PeftOutputModule],
                                report: MergeReport,
                                produce: (_ write: (ModuleResult) throws -> Void) throws -> Void) throws {
        try assemble(plan: plan, to: directory, overwrite: overwrite, modules: modules, report: report) { sink in
            try produce { result in try sink.write(result) }
        }
    }

    /// The same with a sink that also takes a module as result-body bytes (`write(name:rank:…body:)`), so a
    /// runtime can stream each module from a mapped checkpoint record to the output without decoding it.
    public static func assemble(plan: MergePlan, to directory: String, overwrite: Bool, modules: [PeftOutputModule],
                                report: MergeReport, stream: (inout OutputModuleSink) throws -> Void) throws {
        try checkDestination(directory, overwrite: overwrite)
        let destination = URL(fileURLWithPath: directory).standardizedFileURL.path
        let staging = AtomicFile.temporaryPath(for: destination) + ".staging"
        do {
            let writer = try PeftAdapterWriter(directory: staging, modules: modules, config: outputConfig(plan))
            var sink = OutputModuleSink(writer: writer, modules: modules, directory: directory)
            try stream(&sink)
            guard sink.next == modules.count else {
                throw MergeError("\(directory): only \(sink.next) of \(modules.count) module results were produced")
            }
            try writer.finish()
            try AtomicFile.write(Array(report.jsonData()), to: staging + "/" + reportFileName)
            try AtomicFile.syncDirectory(staging)
            try moveIntoPlace(staging, destination, overwrite: overwrite)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// One-shot form for results held in memory (in module order).
    public static func assemble(plan: MergePlan, to directory: String, overwrite: Bool, results: [ModuleResult],
                                report: MergeReport) throws {
        try assemble(plan: plan, to: directory, overwrite: overwrite, modules: outputModules(results), report: report) { write in
            for result in results { try write(result) }
        }
    }

    /// What the output adapter_config.json carries: scaling 1 everywhere (the writer sets lora_alpha = r and
    /// mirrors rank_pattern into alpha_pattern), `r` the most common output rank (ties: the larger).
    static func outputConfig(_ plan: MergePlan) -> PeftOutputConfig {
        PeftOutputConfig(baseModelNameOrPath: plan.baseModelNameOrPath, taskType: plan.taskType,
                         targetModules: plan.targetModules, dtype: plan.job.outputDType,
                         metadata: ["brickyard_method": plan.spec.method.rawValue, "brickyard_version": BrickyardVersion.string])
    }

    private static func moveIntoPlace(_ staging: String, _ destination: String, overwrite: Bool) throws {
        var displaced: String?
        if FileManager.default.fileExists(atPath: destination) {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: destination)) ?? []
            if contents.isEmpty {
                // rename(2) replaces an empty directory atomically.
            } else {
                guard overwrite else { throw MergeError("\(destination): appeared while merging and is not empty (use --force)") }
                let aside = AtomicFile.temporaryPath(for: destination) + ".old"
                guard rename(destination, aside) == 0 else {
                    throw MergeError("\(destination): cannot move the existing directory aside: \(String(cString: strerror(errno)))")
                }
                displaced = aside
            }
        }
        guard rename(staging, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            if let displaced { _ = rename(displaced, destination) }
            throw MergeError("\(destination): cannot rename the finished output into place: \(reason)")
        }
        try AtomicFile.syncDirectory(containing: destination)
        if let displaced { try? FileManager.default.removeItem(atPath: displaced) }
    }
}

/// Takes the output's modules in declared order, as results or as result-body bytes, and writes each to the
/// adapter being assembled (`OutputAssembler.assemble(…stream:)`).
public struct OutputModuleSink {
    fileprivate let writer: PeftAdapterWriter
    fileprivate let modules: [PeftOutputModule]
    fileprivate let directory: String
    /// Modules written so far.
    public fileprivate(set) var next = 0

    fileprivate init(writer: PeftAdapterWriter, modules: [PeftOutputModule], directory: String) {
        self.writer = writer
        self.modules = modules
        self.directory = directory
    }

    public mutating func write(_ result: ModuleResult) throws {
        try check(name: result.name, rank: result.rank, outFeatures: result.outFeatures, inFeatures: result.inFeatures)
        try writer.write(module: result.name, a: result.a, b: result.b)
        next += 1
    }

    /// One module as `ResultBody` lays it out: B' [out, rank] then A' [rank, in], little-endian Float32, at any
    /// alignment (e.g. inside a mapped checkpoint record). Float32 output is written from these bytes directly.
    public mutating func write(name: String, rank: Int, outFeatures: Int, inFeatures: Int,
                               body: UnsafeRawBufferPointer) throws {
        try check(name: name, rank: rank, outFeatures: outFeatures, inFeatures: inFeatures)
        let bBytes = 4 * outFeatures * rank, aBytes = 4 * rank * inFeatures
        guard body.count == bBytes + aBytes else {
            throw MergeError("\(directory): result body of \(name) has \(body.count) bytes, rank \(rank) needs \(bBytes + aBytes)")
        }
        try writer.write(module: name, aFloat32Bytes: UnsafeRawBufferPointer(rebasing: body[bBytes...]),
                         bFloat32Bytes: UnsafeRawBufferPointer(rebasing: body[0..<bBytes]))
        next += 1
    }

    private func check(name: String, rank: Int, outFeatures: Int, inFeatures: Int) throws {
        guard next < modules.count else {
            throw MergeError("\(directory): more module results than the \(modules.count) declared")
        }
        let declared = modules[next]
        guard name == declared.name, rank == declared.rank, outFeatures == declared.outFeatures,
              inFeatures == declared.inFeatures else {
            throw MergeError("\(directory): result for \(name) (rank \(rank)) does not match declared module \(declared.name) (rank \(declared.rank))")
        }
    }
}
