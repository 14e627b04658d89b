/// Owns every C allocation made while building one protobuf-c message tree, and frees them all at once.
/// protobuf-c keeps raw pointers to strings, bytes and sub-messages; building the tree from arena copies means
/// no pointer ever escapes a Swift `with…` scope, and one `deallocateAll` covers every path.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    /// Uninitialised storage for one `T` (a trivial C struct: the caller runs its protobuf-c `__init`).
    func allocate<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        blocks.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    /// Storage for `count` `T`s (at least one, so the pointer is never dangling for empty arrays).
    func allocateArray<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        blocks.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    /// A NUL-terminated UTF-8 copy of `string` (C stops at an embedded NUL, as protobuf-c does).
    func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(string.utf8)
        let pointer = allocateArray(CChar.self, count: utf8.count + 1)
        utf8.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: source.count) }
        }
        pointer[utf8.count] = 0
        return pointer
    }

    /// A copy of `bytes`, for `ProtobufCBinaryData`.
    func bytes(_ bytes: [UInt8]) -> UnsafeMutablePointer<UInt8> {
        let pointer = allocateArray(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: source.count) }
        }
        return pointer
    }

    func deallocateAll() {
        for block in blocks { block.deallocate() }
        blocks.removeAll()
    }

    deinit { deallocateAll() }
}
