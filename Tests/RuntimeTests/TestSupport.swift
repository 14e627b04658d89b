import Foundation

/// A unique temporary directory per test, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "runtime") throws {
        path = NSTemporaryDirectory() + "brickyard-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum FixturePaths {
    static let peftTiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/peft-tiny")

    static func adapter(_ name: String) -> String { peftTiny.appendingPathComponent("adapters/\(name)").path }
}
