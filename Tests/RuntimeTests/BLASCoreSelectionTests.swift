import BrickyardTestSupport
import Foundation
import Kernels
import Testing

/// The executable's re-execution with better OpenBLAS kernels (`BLASCoreSelection`), run as a user would: without
/// any choice in the environment it takes the rule's upgrade of OpenBLAS's own choice; a set `OPENBLAS_CORETYPE`
/// or `BRICKYARD_BLAS_AUTO_CORE=0` keeps it.
@Suite struct BLASCoreSelectionTests {
    /// `brickyard blas-core` with the BLAS variables removed from this process's environment, then `extra` added.
    func core(_ extra: [String: String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(BrickyardExecutable.path))
        process.arguments = ["blas-core"]
        var environment = ProcessInfo.processInfo.environment
        for key in [BLASCore.coreTypeVariable, BLASCore.optOutVariable, BLASCore.markerVariable] {
            environment[key] = nil
        }
        process.environment = environment.merging(extra) { $1 }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func choosesOnceAndRespectsChoices() throws {
        let own = try core([BLASCore.optOutVariable: "0"])
        #expect(!own.isEmpty)
        let chosen = try core([:])
        let expected = BLASCore.selectable ? (BLASCore.better(than: own, cpuFeatures: BLASCore.cpuFeatures) ?? own) : own
        #expect(chosen == expected)
        if BLASCore.selectable {
            #expect(try core([BLASCore.coreTypeVariable: "Prescott"]) == "Prescott")
            // A stale marker (as if already re-executed) stops the re-execution: no loop, OpenBLAS's own choice.
            #expect(try core([BLASCore.markerVariable: "Prescott"]) == own)
        }
    }
}
