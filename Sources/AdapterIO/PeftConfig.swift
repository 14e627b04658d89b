import Foundation

/// The fields of a PEFT `adapter_config.json` that decide how LoRA factors become a weight delta, plus what
/// a merged adapter carries over. Anything that is not plain LoRA is refused when parsing.
public struct PeftConfig: Sendable, Equatable {
    /// `target_modules` is either a list of module-name suffixes or one regular expression.
    public enum TargetModules: Sendable, Equatable {
        case names([String])
        case pattern(String)

        var isPattern: Bool {
            if case .pattern = self { return true }
            return false
        }
    }

    public var peftType: String
    public var baseModelNameOrPath: String?
    public var taskType: String?
    public var targetModules: TargetModules
    public var r: Int
    public var loraAlpha: Double
    public var useRslora: Bool
    public var fanInFanOut: Bool
    /// Keys are PEFT patterns (module-name suffixes or regexes), values per-module ranks / alphas.
    public var rankPattern: [String: Int]
    public var alphaPattern: [String: Double]
    /// Whether `target_modules` alone says which modules carry LoRA factors: a list of names, with neither
    /// `layers_to_transform` nor `exclude_modules` narrowing it. Only then can a merged adapter list the same
    /// short names (`q_proj`) without PEFT creating empty LoRA layers where the input had none.
    public var targetsEveryNamedModule: Bool

    public init(peftType: String = "LORA", baseModelNameOrPath: String? = nil, taskType: String? = nil,
                targetModules: TargetModules = .names([]), r: Int, loraAlpha: Double, useRslora: Bool = false,
                fanInFanOut: Bool = false, rankPattern: [String: Int] = [:], alphaPattern: [String: Double] = [:],
                targetsEveryNamedModule: Bool = false) {
        self.peftType = peftType
        self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType
        self.targetModules = targetModules
        self.r = r
        self.loraAlpha = loraAlpha
        self.useRslora = useRslora
        self.fanInFanOut = fanInFanOut
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
        self.targetsEveryNamedModule = targetsEveryNamedModule
    }

    /// Reads and validates `adapter_config.json`.
    public static func load(path: String) throws -> PeftConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AdapterIOError(.io, path: path, "cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
            throw AdapterIOError(.badConfig, path: path, "not a JSON object")
        }
        return try parse(json, path: path)
    }

    static func parse(_ json: [String: Any], path: String) throws -> PeftConfig {
        let fields = ConfigFields(json: json, path: path)
        let peftType = try fields.string("peft_type") ?? "LORA"
        guard peftType == "LORA" else {
            throw AdapterIOError(.unsupported, path: path, "peft_type is \(peftType); only LORA adapters are supported")
        }
        if try fields.bool("use_dora") == true {
            throw AdapterIOError(.unsupported, path: path, "use_dora is true: DoRA adapters are not supported (plain LoRA only)")
        }
        if try fields.bool("lora_bias") == true {
            throw AdapterIOError(.unsupported, path: path, "lora_bias is true: LoRA bias terms are not supported (plain LoRA only)")
        }
        guard let r = try fields.int("r"), r >= 1 else {
            throw AdapterIOError(.badConfig, path: path, "r is missing or not a positive integer")
        }
        guard let alpha = try fields.number("lora_alpha") else {
            throw AdapterIOError(.badConfig, path: path, "lora_alpha is missing or not a number")
        }
        let targets: TargetModules
        switch json["target_modules"] {
        case let list as [Any]:
            let names = list.compactMap { $0 as? String }
            guard names.count == list.count else { throw AdapterIOError(.badConfig, path: path, "target_modules holds a non-string") }
            targets = .names(names)
        case let pattern as String:
            targets = .pattern(pattern)
        case nil, is NSNull:
            targets = .names([])
        default:
            throw AdapterIOError(.badConfig, path: path, "target_modules is neither a list nor a string")
        }
        var rankPattern: [String: Int] = [:]
        for (key, value) in try fields.dictionary("rank_pattern") {
            guard let rank = value as? Int, !(value is String), rank >= 1 else {
                throw AdapterIOError(.badConfig, path: path, "rank_pattern.\(key) is not a positive integer")
            }
            rankPattern[key] = rank
        }
        var alphaPattern: [String: Double] = [:]
        for (key, value) in try fields.dictionary("alpha_pattern") {
            guard let number = value as? Double, !(value is String) else {
                throw AdapterIOError(.badConfig, path: path, "alpha_pattern.\(key) is not a number")
            }
            alphaPattern[key] = number
        }
        let config = PeftConfig(
            peftType: peftType, baseModelNameOrPath: try fields.string("base_model_name_or_path"),
            taskType: try fields.string("task_type"), targetModules: targets, r: r, loraAlpha: alpha,
            useRslora: try fields.bool("use_rslora") ?? false, fanInFanOut: try fields.bool("fan_in_fan_out") ?? false,
            rankPattern: rankPattern, alphaPattern: alphaPattern,
            targetsEveryNamedModule: targets != .names([]) && !targets.isPattern
                && !fields.isPresent("layers_to_transform") && !fields.isPresent("exclude_modules"))
        try config.validatePatterns(path: path)
        return config
    }

    /// Rank PEFT gives `module` (a full module path as in the tensor keys).
    public func rank(for module: String) -> Int {
        rank(for: module, patterns: PatternTable(keys: rankPattern.keys))
    }

    /// Alpha PEFT gives `module`.
    public func alpha(for module: String) -> Double {
        alpha(for: module, patterns: PatternTable(keys: alphaPattern.keys))
    }

    /// As `rank(for:)` with the patterns compiled once for many modules.
    func rank(for module: String, patterns: PatternTable) -> Int {
        patterns.key(matching: module).flatMap { rankPattern[$0] } ?? r
    }

    func alpha(for module: String, patterns: PatternTable) -> Double {
        patterns.key(matching: module).flatMap { alphaPattern[$0] } ?? loraAlpha
    }

    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    public func scaling(rank: Int, alpha: Double) -> Double {
        useRslora ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    static func patternKey(in keys: [String], matching module: String) -> String? {
        PatternTable(keys: keys).key(matching: module)
    }

    private func validatePatterns(path: String) throws {
        for key in Set(rankPattern.keys).union(alphaPattern.keys) {
            guard (try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$")) != nil else {
                throw AdapterIOError(.badConfig, path: path, "rank_pattern/alpha_pattern key \(key) is not a valid regular expression")
            }
        }
    }
}

/// PEFT's `get_pattern_key`: key `k` applies when the module name matches the regex `(.*\.)?(k)$`.
/// PEFT matches against the name inside the base model (`model.layers.0…`), our names carry the
/// `base_model.model.` prefix; the optional leading group makes both forms match, and the stripped name is
/// tried too for keys anchored with `^`. PEFT takes the first matching key in file order, which JSON parsing
/// loses: an exact name wins, then the longest matching key, then the lexicographically smallest.
struct PatternTable {
    private let keys: Set<String>
    private let compiled: [(key: String, regex: NSRegularExpression)]

    init<Keys: Sequence>(keys: Keys) where Keys.Element == String {
        self.keys = Set(keys)
        // Keys that do not compile were rejected when the config was parsed; longest first, then bytewise.
        compiled = self.keys.sorted { ($0.count, $1) > ($1.count, $0) }.compactMap { key in
            (try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$")).map { (key, $0) }
        }
    }

    func key(matching module: String) -> String? {
        guard !keys.isEmpty else { return nil }
        let candidates = [module, PeftNames.strippingWrapperPrefix(module)]
        if let exact = candidates.first(where: keys.contains) { return exact }
        return compiled.first { entry in
            candidates.contains { entry.regex.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
        }?.key
    }
}

/// Naming conventions of PEFT checkpoints.
public enum PeftNames {
    /// PeftModel wraps the base model as `base_model.model`; saved keys start with it.
    public static let wrapperPrefix = "base_model.model."

    public static func strippingWrapperPrefix(_ name: String) -> String {
        name.hasPrefix(wrapperPrefix) ? String(name.dropFirst(wrapperPrefix.count)) : name
    }

    /// The last path component (`q_proj`), what `target_modules` lists.
    public static func leaf(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }
}

/// Typed access to a JSON object with errors naming the key; JSON null counts as absent.
private struct ConfigFields {
    let json: [String: Any]
    let path: String

    private func value(_ key: String) -> Any? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        return value
    }

    /// Set to something other than null, an empty list or an empty string.
    func isPresent(_ key: String) -> Bool {
        switch value(key) {
        case nil: return false
        case let list as [Any]: return !list.isEmpty
        case let text as String: return !text.isEmpty
        default: return true
        }
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value as? String else { throw AdapterIOError(.badConfig, path: path, "\(key) is not a string") }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value as? Bool else { throw AdapterIOError(.badConfig, path: path, "\(key) is not true or false") }
        return flag
    }

    func int(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard !(value is String), let number = value as? Int else { throw AdapterIOError(.badConfig, path: path, "\(key) is not an integer") }
        return number
    }

    func number(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard !(value is String), let number = value as? Double else { throw AdapterIOError(.badConfig, path: path, "\(key) is not a number") }
        return number
    }

    func dictionary(_ key: String) throws -> [String: Any] {
        guard let value = value(key) else { return [:] }
        guard let dictionary = value as? [String: Any] else { throw AdapterIOError(.badConfig, path: path, "\(key) is not an object") }
        return dictionary
    }
}
