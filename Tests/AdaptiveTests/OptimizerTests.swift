import Foundation
import Testing
@testable import Adaptive

/// Reference numbers recorded by scripts/record-optimizer-reference (torch AdamW, SciPy Nelder–Mead, pycma).
private struct Reference: Decodable {
    struct AdamWRun: Decodable { var x0: [Double]; var lr: Double; var steps: Int; var weight_decay: Double; var trajectory: [[Double]] }
    struct NelderMeadRun: Decodable { var x0: [Double]; var step: Double; var iterations: Int; var x: [Double]; var f: Double; var nfev: Int }
    struct CMARun: Decodable { var dimension: Int; var target: Double; var median_evaluations: Int }
    var adamw_torch: [String: AdamWRun]
    var nelder_mead: [String: NelderMeadRun]
    var cma_es: [String: CMARun]

    static func load() throws -> Reference {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/optimizer-reference.json").path
        guard let data = FileManager.default.contents(atPath: path) else { throw AdaptError("missing \(path)") }
        return try JSONDecoder().decode(Reference.self, from: data)
    }
}

func rosenbrock(_ x: [Double]) -> Double {
    var sum = 0.0
    for i in 0..<(x.count - 1) {
        let a = x[i + 1] - x[i] * x[i]
        let b = 1 - x[i]
        sum += 100 * a * a + b * b
    }
    return sum
}

func rosenbrockGradient(_ x: [Double]) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    for i in 0..<(x.count - 1) {
        g[i] += -400 * x[i] * (x[i + 1] - x[i] * x[i]) - 2 * (1 - x[i])
        g[i + 1] += 200 * (x[i + 1] - x[i] * x[i])
    }
    return g
}

private func quadratic(_ x: [Double]) -> Double {
    let a = x[0] - 1, b = x[1] + 2, c = x[2] - 0.25
    return a * a + 10 * b * b + 0.5 * x[0] * x[1] + c * c
}

private func sphere(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 } }

@Suite("Optimisers against references")
struct OptimizerTests {
    @Test("AdamW with warmup + cosine follows torch.optim.AdamW + LambdaLR step for step", arguments: ["rosenbrock", "sphere"])
    func adamwMatchesTorch(function: String) throws {
        let run = try #require(try Reference.load().adamw_torch[function])
        var x = run.x0
        var optimizer = AdamW(parameterCount: x.count, learningRate: run.lr, totalSteps: run.steps, weightDecay: run.weight_decay)
        let target = [1.0, 2.0, -1.0]
        for step in 0..<run.steps {
            let gradient = function == "rosenbrock" ? rosenbrockGradient(x) : x.indices.map { 2 * (x[$0] - target[$0]) }
            optimizer.update(&x, gradient: gradient)
            for (mine, theirs) in zip(x, run.trajectory[step]) {
                #expect(abs(mine - theirs) <= 1e-9 * max(1, abs(theirs)), "step \(step): \(x) vs torch \(run.trajectory[step])")
            }
        }
    }

    @Test("AdamW schedule: linear warmup over 10% of the steps, cosine to 0")
    func adamwSchedule() {
        let optimizer = AdamW(parameterCount: 1, learningRate: 0.05, totalSteps: 100)
        #expect(optimizer.warmupSteps == 10)
        #expect(optimizer.scheduledRate(at: 0) == 0.005)
        #expect(abs(optimizer.scheduledRate(at: 9) - 0.05) < 1e-15)
        #expect(abs(optimizer.scheduledRate(at: 10) - 0.05) < 1e-15)
        #expect(abs(optimizer.scheduledRate(at: 55) - 0.025) < 1e-12)
        #expect(optimizer.scheduledRate(at: 99) < 0.0002)
    }

    @Test("Nelder–Mead matches SciPy's Nelder-Mead from the same simplex", arguments: ["rosenbrock", "quadratic"])
    func nelderMeadMatchesScipy(function: String) throws {
        let run = try #require(try Reference.load().nelder_mead[function])
        let f: ([Double]) -> Double = function == "rosenbrock" ? { rosenbrock($0) } : { quadratic($0) }
        var search = NelderMead(initial: run.x0, step: run.step)
        var evaluations = 0
        while search.iterations < run.iterations {
            let points = search.ask()
            evaluations += points.count
            search.tell(points.map(f))
        }
        let best = try #require(search.best)
        // Same points after the same iterations; SciPy reaches them with 2 fewer calls (its count is not compared
        // further: both searches visit the same simplices).
        #expect(abs(evaluations - run.nfev) <= 2)
        for (mine, theirs) in zip(best.point, run.x) { #expect(abs(mine - theirs) <= 1e-10 * max(1, abs(theirs)), "\(best.point) vs scipy \(run.x)") }
        #expect(abs(best.value - run.f) <= 1e-10 * max(1, abs(run.f)))
    }

    @Test("Nelder–Mead finds the Rosenbrock minimum (1, 1)")
    func nelderMeadConverges() throws {
        var search = NelderMead(initial: [-1.2, 1], step: 0.5)
        while search.iterations < 400 { search.tell(search.ask().map(rosenbrock)) }
        let best = try #require(search.best)
        #expect(abs(best.point[0] - 1) < 1e-6 && abs(best.point[1] - 1) < 1e-6)
    }

    /// Evaluations CMA-ES needs to get below `target` (nil if it does not within `budget`).
    private func cmaEvaluations(_ f: ([Double]) -> Double, initial: [Double], seed: UInt64, target: Double, budget: Int) -> (Int?, [Double]) {
        var search = CMAES(initial: initial, sigma: 0.5, seed: seed)
        var evaluations = 0
        var best = (value: Double.infinity, point: initial)
        while evaluations < budget {
            let candidates = search.ask()
            let values = candidates.map(f)
            evaluations += values.count
            for (point, value) in zip(candidates, values) where value < best.value { best = (value, point) }
            if best.value < target { return (evaluations, best.point) }
            search.tell(values)
        }
        return (nil, best.point)
    }

    @Test("CMA-ES reaches f < 1e-8 on sphere (n=8) and Rosenbrock (n=4) within 2× pycma's median evaluations", arguments: ["sphere", "rosenbrock"])
    func cmaesPerformance(function: String) throws {
        let reference = try #require(try Reference.load().cma_es[function])
        let n = reference.dimension
        let f: ([Double]) -> Double = function == "sphere" ? { sphere($0) } : { rosenbrock($0) }
        var counts: [Int] = []
        for seed in 1...7 as ClosedRange<UInt64> {
            let start: Double = function == "sphere" ? 0.5 : 0
            let (count, point) = cmaEvaluations(f, initial: [Double](repeating: start, count: n), seed: seed,
                                                target: reference.target, budget: 20 * reference.median_evaluations)
            let optimum: Double = function == "sphere" ? 0 : 1
            if count != nil { #expect(point.allSatisfy { abs($0 - optimum) < 1e-3 }) }
            counts.append(count ?? Int.max)
        }
        counts.sort()
        let median = counts[counts.count / 2]
        #expect(median <= 2 * reference.median_evaluations, "median \(median) evaluations vs pycma \(reference.median_evaluations)")
    }

    @Test("optimiser states survive a JSON round trip mid-run and continue identically")
    func statesResumeExactly() throws {
        var cma = CMAES(initial: [0.3, -0.2, 0.1], sigma: 0.5, seed: 42)
        var simplex = NelderMead(initial: [0.3, -0.2, 0.1], step: 0.4)
        var adam = AdamW(parameterCount: 3, learningRate: 0.05, totalSteps: 30)
        var x = [0.3, -0.2, 0.1]
        for _ in 0..<5 {
            cma.tell(cma.ask().map(rosenbrock))
            simplex.tell(simplex.ask().map(rosenbrock))
            adam.update(&x, gradient: rosenbrockGradient(x))
        }
        let encoder = JSONEncoder()
        let decoder = JSONDecoder()
        var cma2 = try decoder.decode(CMAES.self, from: encoder.encode(cma))
        var simplex2 = try decoder.decode(NelderMead.self, from: encoder.encode(simplex))
        var adam2 = try decoder.decode(AdamW.self, from: encoder.encode(adam))
        var x2 = try decoder.decode([Double].self, from: encoder.encode(x))
        #expect(cma2 == cma && simplex2 == simplex && adam2 == adam && x2 == x)
        for _ in 0..<5 {
            cma.tell(cma.ask().map(rosenbrock)); cma2.tell(cma2.ask().map(rosenbrock))
            simplex.tell(simplex.ask().map(rosenbrock)); simplex2.tell(simplex2.ask().map(rosenbrock))
            adam.update(&x, gradient: rosenbrockGradient(x)); adam2.update(&x2, gradient: rosenbrockGradient(x2))
        }
        #expect(cma2 == cma)
        #expect(simplex2 == simplex)
        #expect(adam2 == adam && x2 == x)
    }
}
