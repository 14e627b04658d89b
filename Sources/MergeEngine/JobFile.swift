#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AdapterIO
import Foundation
import Yams

/// A problem in a job file: `<file>: <key path>: <problem>`, e.g. `job.yaml: adapters[2].path: /x/y does not exist`.
public struct JobFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    /// Dotted key path with list indices (`adapters[2].path`); empty for whole-file problems.
    public var key: String
    public var problem: String

    public init(file: String, key: String, _ problem: String) {
        self.file = file
        self.key = key
        self.problem = problem
    }

    public var description: String { key.isEmpty ? "\(file): \(problem)" : "\(file): \(key): \(problem)" }
}

/// A job file's text and where it lives: every job kind (merge, adapt) reads its file through this, so the
/// error for an unreadable file and the folder relative paths resolve against are the same everywhere.
public struct JobFileSource: Sendable {
    public let text: String
    /// The file's absolute, standardized path.
    public let absolutePath: String
    /// The folder relative adapter paths and globs resolve against.
    public let baseDirectory: String

    public init(path: String) throws {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        absolutePath = absolute.path
        baseDirectory = absolute.deletingLastPathComponent().path
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw JobFileError(file: absolutePath, key: "", "cannot read the job file (missing or not UTF-8)")
        }
    }
}

extension JobSpec {
    /// Reads a YAML job file; relative adapter paths and globs resolve against the file's folder. Every error names
    /// the file by its absolute path, as the later ones (options, planning) and the report do.
    public static func load(path: String) throws -> JobSpec {
        let source = try JobFileSource(path: path)
        var job = try parse(yaml: source.text, baseDirectory: source.baseDirectory, fileName: source.absolutePath)
        job.sourcePath = source.absolutePath
        return job
    }

    /// Parses job YAML. `fileName` only names the source in errors.
    public static func parse(yaml: String, baseDirectory: String, fileName: String = "job file") throws -> JobSpec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            let reason = "\(error)".split(separator: "\n").first.map(String.init) ?? "syntax error"
            throw JobFileError(file: fileName, key: "", "invalid YAML: \(reason)")
        }
        guard let root else { throw JobFileError(file: fileName, key: "", "empty job file") }
        return try JobFileParser(file: fileName, baseDirectory: baseDirectory).job(root)
    }
}

/// Walks the YAML tree with strict typing, so every error names its key. Public so that job files with more
/// sections (`brickyard adapt`'s `base_model`, `data`, `adapt`) reuse the same typed readers and error format.
public struct JobFileParser {
    public let file: String
    public let baseDirectory: String

    public init(file: String, baseDirectory: String) {
        self.file = file
        self.baseDirectory = baseDirectory
    }

    /// Composes YAML text into a node tree, with the file's error format.
    public static func compose(yaml: String, fileName: String) throws -> Node {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            let reason = "\(error)".split(separator: "\n").first.map(String.init) ?? "syntax error"
            throw JobFileError(file: fileName, key: "", "invalid YAML: \(reason)")
        }
        guard let root else { throw JobFileError(file: fileName, key: "", "empty job file") }
        return root
    }

    public func fail(_ key: String, _ problem: String) -> JobFileError { JobFileError(file: file, key: key, problem) }

    /// The merge job in `root`. `extraKeys` are further top-level sections the caller reads itself; with a
    /// `defaultMethod`, `method` may be left out.
    public func job(_ root: Node, extraKeys: Set<String> = [], defaultMethod: MergeMethodName? = nil) throws -> JobSpec {
        let fields = try mapping(root, key: "", allowed: Set(["method", "rank", "normalize", "scale", "seed", "parameters", "output",
                                                               "adapters", "report", "max_task_mb"]).union(extraKeys))
        let method: MergeMethodName
        if let methodNode = fields["method"] {
            let methodName = try string(methodNode, key: "method")
            guard let named = MergeMethodName(rawValue: methodName) else {
                let known = MergeMethodName.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail("method", "unknown method '\(methodName)' (expected one of \(known))")
            }
            method = named
        } else if let defaultMethod {
            method = defaultMethod
        } else {
            throw fail("method", "is required")
        }
        var rank: Int?
        if let node = fields["rank"] {
            let value = try integer(node, key: "rank")
            guard value >= 1 else { throw fail("rank", "must be at least 1, got \(value)") }
            rank = value
        }
        let normalize = try fields["normalize"].map { try boolean($0, key: "normalize") } ?? true
        let scale = try fields["scale"].map { try number($0, key: "scale") } ?? 1
        guard scale.isFinite, scale != 0 else { throw fail("scale", "must be a finite, non-zero number, got \(scale)") }
        let seed = try fields["seed"].map { try unsigned($0, key: "seed") } ?? 0
        let parameters = try fields["parameters"].map { try parameterMap($0) } ?? [:]
        let dtype = try fields["output"].map { try outputDType($0) } ?? .f32
        guard let adaptersNode = fields["adapters"] else { throw fail("adapters", "is required (a list of {path, weight} or {glob} entries)") }
        let adapters = try adapterList(adaptersNode)
        var job = JobSpec(method: method, rank: rank, normalize: normalize, scale: scale, seed: seed, parameters: parameters,
                          outputDType: dtype, adapters: adapters)
        if let node = fields["report"] {
            let value = try string(node, key: "report")
            guard let level = ReportLevel(rawValue: value) else {
                throw fail("report", "unknown report level '\(value)' (expected full, exact or minimal)")
            }
            job.report = level
        }
        if let node = fields["max_task_mb"] {
            let value = try number(node, key: "max_task_mb")
            guard value > 0, value.isFinite else { throw fail("max_task_mb", "must be a positive number of megabytes, got \(value)") }
            job.maxTaskMB = value
        }
        return job
    }

    // MARK: Sections

    func parameterMap(_ node: Node) throws -> [String: ParameterValue] {
        let fields = try mapping(node, key: "parameters", allowed: nil)
        var result: [String: ParameterValue] = [:]
        for (name, value) in fields {
            let key = "parameters.\(name)"
            guard case let .scalar(scalar) = value else { throw fail(key, "must be a scalar (number, boolean or string)") }
            switch tagName(value) {
            case .bool: result[name] = .bool(try boolean(value, key: key))
            case .int: result[name] = .int(try integer(value, key: key))
            case .float: result[name] = .double(try number(value, key: key))
            case .null: throw fail(key, "has no value")
            default: result[name] = .string(scalar.string)
            }
        }
        return result
    }

    func outputDType(_ node: Node) throws -> DType {
        let fields = try mapping(node, key: "output", allowed: ["dtype"])
        guard let dtypeNode = fields["dtype"] else { return .f32 }
        let text = try string(dtypeNode, key: "output.dtype")
        guard let dtype = DType(spelling: text), dtype != .f64 else {
            throw fail("output.dtype", "unknown dtype '\(text)' (expected \(DType.storedSpellings))")
        }
        return dtype
    }

    func adapterList(_ node: Node) throws -> [AdapterEntry] {
        guard case let .sequence(items) = node else { throw fail("adapters", "must be a list of {path, weight} or {glob} entries") }
        guard !items.isEmpty else { throw fail("adapters", "is empty: a job needs at least one adapter") }
        var result: [AdapterEntry] = []
        for (index, item) in items.enumerated() {
            let prefix = "adapters[\(index)]"
            let fields = try mapping(item, key: prefix, allowed: ["path", "glob", "weight", "rank", "alpha"])
            let weight = try fields["weight"].map { try number($0, key: "\(prefix).weight") } ?? 1
            guard weight.isFinite else { throw fail("\(prefix).weight", "must be a finite number") }
            var rank: Int?
            if let node = fields["rank"] {
                let value = try integer(node, key: "\(prefix).rank")
                guard value >= 1 else { throw fail("\(prefix).rank", "must be at least 1, got \(value)") }
                rank = value
            }
            let alpha = try fields["alpha"].map { try number($0, key: "\(prefix).alpha") }
            switch (fields["path"], fields["glob"]) {
            case let (path?, nil):
                let resolved = resolve(try string(path, key: "\(prefix).path"))
                guard FileManager.default.fileExists(atPath: resolved) else { throw fail("\(prefix).path", "\(resolved) does not exist") }
                result.append(AdapterEntry(path: resolved, weight: weight, rank: rank, alpha: alpha))
            case let (nil, glob?):
                let pattern = try string(glob, key: "\(prefix).glob")
                let matches = try expand(pattern, key: "\(prefix).glob")
                result += matches.map { AdapterEntry(path: $0, weight: weight, rank: rank, alpha: alpha) }
            case (nil, nil):
                throw fail(prefix, "needs either path or glob")
            case (_?, _?):
                throw fail(prefix, "has both path and glob; give one")
            }
        }
        return result
    }

    /// Every adapter directory (one holding adapter_config.json or adapter weights) or .safetensors file the
    /// pattern matches, sorted bytewise so the job order (part of the summation order) never depends on the OS.
    func expand(_ pattern: String, key: String) throws -> [String] {
        let absolute = resolve(pattern)
        var matches = glob_t()
        defer { globfree(&matches) }
        let status = Glibc.glob(absolute, 0, nil, &matches)
        guard status == 0 || status == GLOB_NOMATCH else { throw fail(key, "cannot expand '\(pattern)' (glob error \(status))") }
        var paths: [String] = []
        for index in 0..<Int(matches.gl_pathc) {
            guard let cString = matches.gl_pathv[index] else { continue }
            let path = String(cString: cString)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                let markers = ["adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"]
                if markers.contains(where: { FileManager.default.fileExists(atPath: path + "/" + $0) }) { paths.append(path) }
            } else if path.hasSuffix(".safetensors") {
                paths.append(path)
            }
        }
        guard !paths.isEmpty else {
            throw fail(key, "'\(pattern)' matches no adapter directory or .safetensors file (looked in \(absolute))")
        }
        return paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    public func resolve(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
        return URL(fileURLWithPath: baseDirectory).appendingPathComponent(expanded).standardizedFileURL.path
    }

    // MARK: Typed scalars

    /// The YAML 1.1 core type the scalar resolves to (plain `3` is int, `"3"` is str).
    public func tagName(_ node: Node) -> Tag.Name { Tag.Name(rawValue: node.tag.description) }

    /// The mapping's entries by key; rejects non-string keys, duplicates and keys outside `allowed` (nil: any).
    public func mapping(_ node: Node, key: String, allowed: Set<String>?) throws -> [String: Node] {
        guard case let .mapping(pairs) = node else { throw fail(key.isEmpty ? "(top level)" : key, "must be a mapping") }
        var result: [String: Node] = [:]
        for (keyNode, value) in pairs {
            guard case let .scalar(scalar) = keyNode else { throw fail(key.isEmpty ? "(top level)" : key, "has a non-scalar key") }
            let name = scalar.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            if let allowed, !allowed.contains(name) {
                throw fail(path, "unknown key (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard result.updateValue(value, forKey: name) == nil else { throw fail(path, "given twice") }
        }
        return result
    }

    public func scalar(_ node: Node, key: String, expected: String) throws -> Node.Scalar {
        guard case let .scalar(scalar) = node else { throw fail(key, "must be \(expected)") }
        return scalar
    }

    public func string(_ node: Node, key: String) throws -> String {
        let value = try scalar(node, key: key, expected: "a string")
        guard tagName(node) == .str else { throw fail(key, "must be a string, got '\(value.string)'") }
        return value.string
    }

    public func integer(_ node: Node, key: String) throws -> Int {
        let value = try scalar(node, key: key, expected: "an integer")
        guard tagName(node) == .int, let integer = node.int else { throw fail(key, "must be an integer, got '\(value.string)'") }
        return integer
    }

    public func unsigned(_ node: Node, key: String) throws -> UInt64 {
        let value = try scalar(node, key: key, expected: "a non-negative integer")
        guard tagName(node) == .int, let number = UInt64(value.string.replacingOccurrences(of: "_", with: "")) else {
            throw fail(key, "must be a non-negative integer, got '\(value.string)'")
        }
        return number
    }

    public func number(_ node: Node, key: String) throws -> Double {
        let value = try scalar(node, key: key, expected: "a number")
        guard tagName(node) == .int || tagName(node) == .float, let number = node.float else {
            throw fail(key, "must be a number, got '\(value.string)'")
        }
        return number
    }

    public func boolean(_ node: Node, key: String) throws -> Bool {
        let value = try scalar(node, key: key, expected: "true or false")
        guard tagName(node) == .bool, let flag = node.bool else { throw fail(key, "must be true or false, got '\(value.string)'") }
        return flag
    }
}
