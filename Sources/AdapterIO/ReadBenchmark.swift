import Foundation

/// Reads every tensor of a set of adapters and converts it to Float32, as the coordinator and workers do,
/// timing the whole pass (for scripts/bench-read).
public enum ReadBenchmark {
    /// Totals of one pass over the pool.
    public struct Result: Sendable {
        public var files: Int
        public var tensors: Int
        /// Bytes of the safetensors files read.
        public var bytes: Int
        public var seconds: Double
        public var gigabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e9 : 0 }
    }

    /// Opens each adapter (directory or .safetensors file) and converts all its tensors through one reused buffer.
    public static func run(paths: [String]) throws -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        var result = Result(files: 0, tensors: 0, bytes: 0, seconds: 0)
        var buffer: [Float] = []
        for path in paths {
            let adapter = try PeftAdapter.load(path: path)
            let file = adapter.safetensors
            for tensor in file.tensors {
                if buffer.count < tensor.elementCount { buffer = [Float](repeating: 0, count: tensor.elementCount) }
                try buffer.withUnsafeMutableBufferPointer { all in
                    try file.read(tensor.name, into: UnsafeMutableBufferPointer(rebasing: all[0..<tensor.elementCount]))
                }
                result.tensors += 1
            }
            result.files += 1
            result.bytes += file.fileSize
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return result
    }
}
