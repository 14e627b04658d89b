import COpenBLAS
import CSIMD
import Foundation

/// Which OpenBLAS kernel set ("core type") this process uses, and which one it should use.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels once, when the library is loaded, from cpuid; a build older than
/// the CPU (Debian's 0.3.21 on this project's Xeons) does not recognise it and falls back to generic SSE3
/// "Prescott" kernels, 2–5× slower than its AVX-512 ones (bench/results/scale.md). `OPENBLAS_CORETYPE` overrides
/// the choice, but only at load: so the `brickyard` executable re-executes itself once with the variable set
/// (`BrickyardCLI`'s entry point), and every process it starts inherits it. Different kernels give different
/// bits, so every process of one run must use the same set: children are started with the parent's core type
/// (`childEnvironment`), and a program that merges in-process next to `brickyard` processes (the test binary)
/// either exports the executable's choice before it starts (`brickyard blas-core` prints it) or starts those
/// processes with its own kernel set (the test support does).
public enum BLASCore {
    /// Set to "0" to keep OpenBLAS's own choice (no re-execution).
    public static let optOutVariable = "BRICKYARD_BLAS_AUTO_CORE"
    /// Set on the re-executed process (value: the core it replaced), so it never re-executes again.
    public static let markerVariable = "BRICKYARD_BLAS_CORE_FROM"
    /// OpenBLAS's own variable, read when the library loads.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// OpenBLAS's x86 fallback kernel sets that predate AVX2 + FMA (lower-cased `openblas_get_corename()`).
    static let genericCores: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "banias", "core2",
                                            "penryn", "dunnington", "nehalem", "atom", "sandybridge"]

    /// The kernel set this process uses, as `openblas_get_corename()` names it ("Prescott", "SkylakeX", …).
    public static var current: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name).trimmingCharacters(in: .whitespaces)
    }

    /// Whether this OpenBLAS chooses its kernels at load (DYNAMIC_ARCH), so `OPENBLAS_CORETYPE` can change them.
    public static var selectable: Bool {
        guard let config = openblas_get_config() else { return false }
        return String(cString: config).contains("DYNAMIC_ARCH")
    }

    /// CPU feature bits (`brickyard_cpu_features`: 2 AVX2 + FMA, 8 Skylake-X's AVX-512 subsets).
    public static var cpuFeatures: Int32 { brickyard_cpu_features() }

    /// The kernel set to ask for when OpenBLAS chose a generic one on a CPU that can run better ones:
    /// "SkylakeX" with Skylake-X's AVX-512 subsets, "Haswell" with AVX2 + FMA, else nil (keep the choice).
    public static func better(than core: String, cpuFeatures: Int32) -> String? {
        guard genericCores.contains(core.lowercased()) else { return nil }
        if cpuFeatures & 8 != 0 { return "SkylakeX" }
        if cpuFeatures & 2 != 0 { return "Haswell" }
        return nil
    }

    /// The core type the process should re-execute with, or nil: nil when `OPENBLAS_CORETYPE` is already set (by
    /// the user or a parent), the user opted out, this process was re-executed already, OpenBLAS cannot select
    /// (no DYNAMIC_ARCH), or its choice is not generic for this CPU.
    public static func reexecutionTarget(environment: [String: String], current: String, selectable: Bool,
                                         cpuFeatures: Int32) -> String? {
        guard selectable, (environment[coreTypeVariable] ?? "").isEmpty, environment[optOutVariable] != "0",
              environment[markerVariable] == nil else { return nil }
        return better(than: current, cpuFeatures: cpuFeatures)
    }

    /// The variables a child process (a worker, an evaluator) needs to use this process's kernels: its core type,
    /// unless OpenBLAS cannot select one.
    public static var childEnvironment: [String: String] {
        selectable ? [coreTypeVariable: current] : [:]
    }
}
