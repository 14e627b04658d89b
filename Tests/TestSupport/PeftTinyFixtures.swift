import Foundation

/// The peft-tiny fixtures copied into Tests/Fixtures (real PEFT adapters and PEFT's own results for them): the one
/// place every test target finds them.
public enum PeftTinyFixtures {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/peft-tiny")

    /// Every adapter of the set, in the order the tests merge them.
    public static let adapterNames = ["a_r8", "b_r4", "c_rslora", "d_pattern", "e_bf16"]

    public static func adapter(_ name: String) -> String { root.appendingPathComponent("adapters/\(name)").path }

    /// A file PEFT wrote for the fixtures (expected merges, deltas).
    public static func expected(_ file: String) -> String { root.appendingPathComponent("expected/\(file)").path }

    /// PEFT's dense ΔW of one adapter.
    public static func expectedDelta(_ name: String) -> String { expected("delta_\(name).safetensors") }
}
