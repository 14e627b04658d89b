import Foundation

/// A unique folder under the temporary directory for one test: removed by `remove()` or when the last reference
/// goes, unless BRICKYARD_TEST_KEEP is set (to look at what a failing test left).
public final class TestDirectory: @unchecked Sendable {
    // @unchecked: a test owns its directory; `path` never changes.
    public let path: String

    public init(_ label: String = "test") throws {
        path = NSTemporaryDirectory() + "brickyard-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { remove() }

    public func remove() {
        guard ProcessInfo.processInfo.environment["BRICKYARD_TEST_KEEP"] == nil else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

    /// The text of a file in the folder, or "" when it is missing.
    public func read(_ relative: String) -> String {
        (try? String(contentsOfFile: file(relative), encoding: .utf8)) ?? ""
    }

    /// Writes raw bytes (for building malformed files) and returns the file's path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    @discardableResult
    public func write(_ name: String, text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    /// A job file over the peft-tiny fixtures (cat by default: exact and fast); `extra` is YAML inserted before
    /// the adapter list.
    public func writeJob(method: String = "cat", adapters: [String] = PeftTinyFixtures.adapterNames,
                         extra: String = "") throws -> String {
        var text = "method: \(method)\n\(extra)adapters:\n"
        for name in adapters { text += "  - path: \(PeftTinyFixtures.adapter(name))\n" }
        return try write("job-\(UUID().uuidString.prefix(6)).yaml", text: text)
    }
}
