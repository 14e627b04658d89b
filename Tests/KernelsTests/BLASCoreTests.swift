import Testing
@testable import Kernels

/// The rule that picks OpenBLAS's kernels (`BLASCore`): upgrade only a generic choice, only to what the CPU runs,
/// and never against the user's or a parent's choice.
@Suite struct BLASCoreTests {
    @Test(arguments: [
        ("Prescott", Int32(1 | 2 | 4 | 8), "SkylakeX"),
        ("prescott", Int32(2 | 4 | 8), "SkylakeX"),
        ("Prescott", Int32(1 | 2 | 4), "Haswell"),  // AVX-512F without Skylake-X's subsets
        ("Prescott", Int32(1 | 2), "Haswell"),
        ("Sandybridge", Int32(1 | 2), "Haswell"),
        ("Nehalem", Int32(1 | 2 | 4 | 8), "SkylakeX"),
        ("Prescott", Int32(1), nil),
        ("Prescott", Int32(0), nil),
        ("Haswell", Int32(1 | 2 | 4 | 8), nil),
        ("SkylakeX", Int32(1 | 2 | 4 | 8), nil),
        ("Cooperlake", Int32(1 | 2 | 4 | 8), nil),
        ("Zen", Int32(1 | 2), nil),
        ("ARMV8", Int32(0), nil),
    ] as [(String, Int32, String?)])
    func upgradesOnlyGenericKernels(core: String, features: Int32, expected: String?) {
        #expect(BLASCore.better(than: core, cpuFeatures: features) == expected)
    }

    @Test(arguments: [
        ([:], true, "SkylakeX"),
        (["OPENBLAS_CORETYPE": "Prescott"], true, nil),  // the user's (or a parent's) choice stands
        (["OPENBLAS_CORETYPE": ""], true, "SkylakeX"),  // empty counts as unset
        (["BRICKYARD_BLAS_AUTO_CORE": "0"], true, nil),  // opt-out
        (["BRICKYARD_BLAS_AUTO_CORE": "1"], true, "SkylakeX"),
        (["BRICKYARD_BLAS_CORE_FROM": "Prescott"], true, nil),  // already re-executed: never loops
        ([:], false, nil),  // no DYNAMIC_ARCH: the variable would change nothing
    ] as [([String: String], Bool, String?)])
    func reexecutesOnlyWhenNobodyChose(environment: [String: String], selectable: Bool, expected: String?) {
        #expect(BLASCore.reexecutionTarget(environment: environment, current: "Prescott", selectable: selectable,
                                           cpuFeatures: 1 | 2 | 4 | 8) == expected)
    }

    @Test func childrenGetThisProcesssKernels() {
        #expect(!BLASCore.current.isEmpty)
        if BLASCore.selectable {
            #expect(BLASCore.childEnvironment == [BLASCore.coreTypeVariable: BLASCore.current])
        } else {
            #expect(BLASCore.childEnvironment.isEmpty)
        }
    }
}
