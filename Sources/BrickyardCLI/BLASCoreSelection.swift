import ArgumentParser
import Foundation
import Kernels
import Logging

/// The executable's one-time switch to OpenBLAS's better kernels (`BLASCore`): when OpenBLAS loaded a generic
/// kernel set on a CPU that runs its AVX-512 (or AVX2) ones, and nobody chose (`OPENBLAS_CORETYPE` unset, no
/// `BRICKYARD_BLAS_AUTO_CORE=0`), the process re-executes itself once with `OPENBLAS_CORETYPE` set, before any
/// argument is parsed or any thread started. Children inherit the variable, so every process of the run uses
/// the same kernels (the same bits). If the exec fails the process continues with the generic kernels.
enum BLASCoreSelection {
    /// (replaced, chosen) when this process is the re-executed one; read by `logChoice`.
    nonisolated(unsafe) private static var replaced: (from: String, to: String)?

    static func reexecuteIfNeeded() {
        let environment = ProcessInfo.processInfo.environment
        if let from = environment[BLASCore.markerVariable] {
            // The re-executed process: remember for the debug line, and do not pass the marker on.
            if !from.isEmpty { replaced = (from, BLASCore.current) }
            unsetenv(BLASCore.markerVariable)
            return
        }
        let current = BLASCore.current
        guard let target = BLASCore.reexecutionTarget(environment: environment, current: current,
                                                      selectable: BLASCore.selectable,
                                                      cpuFeatures: BLASCore.cpuFeatures) else { return }
        #if os(Linux)
        setenv(BLASCore.coreTypeVariable, target, 1)
        setenv(BLASCore.markerVariable, current, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when the exec failed: keep the kernels already loaded.
        unsetenv(BLASCore.coreTypeVariable)
        unsetenv(BLASCore.markerVariable)
        #endif
    }

    /// One debug line, in the process that re-executed, naming the kernels it chose.
    static func logChoice(_ logger: Logger) {
        guard let replaced else { return }
        logger.debug("OpenBLAS kernels chosen for this CPU",
                     metadata: ["blas.core": "\(replaced.to)", "blas.replaced": "\(replaced.from)",
                                "opt.out": "\(BLASCore.optOutVariable)=0"])
    }
}

/// `brickyard blas-core`: prints the OpenBLAS kernel set this executable runs with after its own choice
/// (`BLASCoreSelection`), e.g. `SkylakeX`. A program that merges in-process next to `brickyard` processes and
/// compares bytes can export it as `OPENBLAS_CORETYPE` before it starts, so both use the same kernels.
struct BLASCoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas-core",
        abstract: "Print the OpenBLAS kernel set (OPENBLAS_CORETYPE) brickyard processes use on this machine.")

    @Flag(help: "Also print the CPU features and whether OpenBLAS can select kernels at load.")
    var verbose = false

    func run() throws {
        print(BLASCore.current)
        if verbose {
            let features = BLASCore.cpuFeatures
            FileHandle.standardError.write(Data(("cpu: avx2+fma \(features & 2 != 0), avx512 skylake-x \(features & 8 != 0); "
                + "openblas selectable \(BLASCore.selectable); \(BLASCore.coreTypeVariable)="
                + "\(ProcessInfo.processInfo.environment[BLASCore.coreTypeVariable] ?? "(unset)")\n").utf8))
        }
    }
}
