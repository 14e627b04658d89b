import AdapterIO
import ArgumentParser
import Foundation

/// `brickyard synth`: writes a pool of deterministic pseudo-random PEFT adapters (demo, tests, benchmarks).
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write N synthetic PEFT LoRA adapters (adapter-000, …) with real model shapes."
    )

    @Option(help: "Folder to write the adapters into (created if needed).")
    var out: String

    @Option(help: "Number of adapters.")
    var adapters: Int

    @Option(help: "LoRA rank.")
    var rank: Int

    @Option(help: "Base model shape: tiny or llama3-8b.")
    var shape: String = "tiny"

    @Option(help: "Number of layers (default: all of the shape: 2 for tiny, 32 for llama3-8b).")
    var layers: Int?

    @Option(help: "Comma-separated modules among q,k,v,o,gate,up,down.")
    var modules: String = SyntheticPool.moduleKinds.joined(separator: ",")

    @Option(help: "Stored dtype: \(DType.storedSpellings).")
    var dtype: String = "bfloat16"

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Flag(help: "Give adapters ranks rank/2, rank, 2·rank in turn.")
    var rankSpread = false

    @Option(help: "Draw every unit from K directions shared across the pool (0: independent units, no structure).")
    var sharedUnits: Int = 0

    @Option(help: "Relative noise added to each shared unit (with --shared-units).")
    var noise: Double = 0.05

    @Flag(help: "Replace adapter directories that already exist.")
    var overwrite = false

    func run() throws {
        let paths = try CommandFailure.reporting { () throws -> [String] in
            guard let shape = SyntheticPool.Shape(rawValue: shape) else {
                throw ValidationFailure("--shape must be tiny or llama3-8b, not '\(shape)'")
            }
            guard let storedType = DType(spelling: dtype), storedType != .f64 else {
                throw ValidationFailure("--dtype must be \(DType.storedSpellings), not '\(dtype)'")
            }
            let pool = try SyntheticPool(shape: shape, adapterCount: adapters, rank: rank, layers: layers,
                                         modules: modules.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) },
                                         dtype: storedType, seed: seed, rankSpread: rankSpread,
                                         sharedUnits: sharedUnits, noise: noise)
            return try pool.write(to: out, overwrite: overwrite)
        }
        print("wrote \(paths.count) adapters to \(out)")
    }
}

/// `brickyard bench-read`: reads and converts every tensor of the given adapters, prints bytes, seconds, GB/s
/// (used by scripts/bench-read; hidden from help).
struct BenchReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-read",
        abstract: "Time reading every tensor of adapters into Float32.",
        shouldDisplay: false
    )

    @Argument(help: "Adapter directories or .safetensors files.")
    var paths: [String]

    func run() throws {
        let result = try CommandFailure.reporting { try ReadBenchmark.run(paths: paths) }
        print("files=\(result.files) tensors=\(result.tensors) bytes=\(result.bytes) seconds=\(String(format: "%.3f", result.seconds)) gbps=\(String(format: "%.2f", result.gigabytesPerSecond))")
    }
}

/// A bad command-line value, reported like every other failure.
struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
