import AdapterIO

/// libFuzzer target: `SafetensorsHeader.parse` on arbitrary bytes must return a header or throw
/// `AdapterIOError`, never crash, trap or read out of bounds (AddressSanitizer watches). A parsed header keeps
/// the parser's promise to the readers: every tensor lies inside the data section, holds exactly
/// shape × dtype bytes, and no two tensors overlap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensorsHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let header = try? SafetensorsHeader.parse(bytes, path: "fuzz") else { return 0 }
    let dataSize = size - header.dataOffset
    var previousEnd = 0
    for tensor in header.tensors.sorted(by: { $0.dataRange.lowerBound < $1.dataRange.lowerBound }) {
        precondition(tensor.dataRange.lowerBound >= 0 && tensor.dataRange.upperBound <= dataSize, "tensor \(tensor.name) outside the data section")
        var elements = 1
        for dimension in tensor.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            precondition(!overflow && dimension >= 0, "tensor \(tensor.name): shape \(tensor.shape) accepted but overflows")
            elements = product
        }
        precondition(elements * tensor.dtype.byteSize == tensor.dataRange.count, "tensor \(tensor.name): size does not match its shape")
        precondition(tensor.dataRange.lowerBound >= previousEnd || tensor.dataRange.isEmpty, "tensors overlap")
        previousEnd = max(previousEnd, tensor.dataRange.upperBound)
    }
    return 0
}
