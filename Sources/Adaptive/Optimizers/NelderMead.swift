/// Nelder–Mead downhill simplex (reflection 1, expansion 2, contraction ½, shrink ½: the standard coefficients,
/// as in SciPy's non-adaptive `minimize(method="Nelder-Mead")`) written as an ask/tell state machine, so the state
/// between two evaluations is plain Codable data and a checkpointed search resumes exactly.
public struct NelderMead: Sendable, Codable, Equatable {
    /// What the last `ask` asked for (and so what `tell` receives).
    public enum Phase: Sendable, Codable, Equatable {
        case initial
        case reflect
        case expand(reflected: [Double], value: Double)
        case contractOutside(reflected: [Double], value: Double)
        case contractInside
        case shrink
    }

    public private(set) var simplex: [[Double]]
    public private(set) var values: [Double]
    public private(set) var phase: Phase = .initial
    public private(set) var iterations = 0

    /// Vertex 0 is `initial`; vertex k is `initial` with coordinate k-1 moved by `step`.
    public init(initial: [Double], step: Double) {
        simplex = [initial] + initial.indices.map { k in
            var vertex = initial
            vertex[k] += step
            return vertex
        }
        values = []
    }

    public var best: (point: [Double], value: Double)? { values.isEmpty ? nil : (simplex[0], values[0]) }

    private var dimension: Int { simplex.count - 1 }

    /// Centroid of every vertex but the worst.
    private var centroid: [Double] {
        (0..<dimension).map { j in simplex.dropLast().reduce(0) { $0 + $1[j] } / Double(dimension) }
    }

    private func along(_ coefficient: Double) -> [Double] {
        let c = centroid
        let worst = simplex[dimension]
        return (0..<dimension).map { c[$0] + coefficient * (c[$0] - worst[$0]) }
    }

    /// The points to evaluate next.
    public func ask() -> [[Double]] {
        switch phase {
        case .initial: return simplex
        case .reflect: return [along(1)]
        case .expand: return [along(2)]
        case .contractOutside: return [along(0.5)]
        case .contractInside: return [along(-0.5)]
        case .shrink:
            let best = simplex[0]
            return simplex.dropFirst().map { vertex in (0..<dimension).map { best[$0] + 0.5 * (vertex[$0] - best[$0]) } }
        }
    }

    /// Takes the values of the points of the last `ask` and moves the simplex.
    public mutating func tell(_ newValues: [Double]) {
        let points = ask()
        precondition(newValues.count == points.count, "NelderMead.tell: \(newValues.count) values for \(points.count) points")
        switch phase {
        case .initial:
            values = newValues
            sortSimplex()
            phase = .reflect
        case .reflect:
            let value = newValues[0]
            if value < values[0] {
                phase = .expand(reflected: points[0], value: value)
            } else if value < values[dimension - 1] || dimension == 0 {
                replaceWorst(points[0], value)
            } else if value < values[dimension] {
                phase = .contractOutside(reflected: points[0], value: value)
            } else {
                phase = .contractInside
            }
        case .expand(let reflected, let reflectedValue):
            if newValues[0] < reflectedValue { replaceWorst(points[0], newValues[0]) } else { replaceWorst(reflected, reflectedValue) }
        case .contractOutside(_, let reflectedValue):
            if newValues[0] <= reflectedValue { replaceWorst(points[0], newValues[0]) } else { phase = .shrink }
        case .contractInside:
            if newValues[0] < values[dimension] { replaceWorst(points[0], newValues[0]) } else { phase = .shrink }
        case .shrink:
            for (offset, point) in points.enumerated() {
                simplex[offset + 1] = point
                values[offset + 1] = newValues[offset]
            }
            sortSimplex()
            iterations += 1
            phase = .reflect
        }
    }

    private mutating func replaceWorst(_ point: [Double], _ value: Double) {
        simplex[dimension] = point
        values[dimension] = value
        sortSimplex()
        iterations += 1
        phase = .reflect
    }

    /// Stable sort by value (ties keep their order), so the search never depends on a sort's tie-breaking.
    private mutating func sortSimplex() {
        let order = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
        simplex = order.map { simplex[$0] }
        values = order.map { values[$0] }
    }
}
