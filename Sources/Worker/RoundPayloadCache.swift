import WireProtocol

/// The shared centers of split k-means rounds (`RoundPayload`) that this connection's coordinator sent, so a
/// worker that computes several blocks of a round receives the round's centers once. Kept per connection (a new
/// connection starts empty, and the coordinator starts its own record of what the worker holds empty too), and per
/// (module, track) only the newest: a track's rounds run one after another, so an older payload is never referred
/// to again. Checked once on arrival (CRC-32C, whole finite float32 values) and decoded once to floats.
struct RoundPayloadCache {
    /// A hostile or confused coordinator cannot make the worker hold more than this many payloads.
    static let maxEntries = 64

    struct Entry {
        let id: UInt64
        let crc32c: UInt32
        let centers: [Float]
        let arrival: Int
    }

    private struct Slot: Hashable {
        let module: String
        let track: UInt32
    }

    private var entries: [Slot: Entry] = [:]
    private var arrivals = 0
    /// Payloads stored since the connection began (tests count them).
    private(set) var stored = 0

    var count: Int { entries.count }

    /// Stores `payload` in its (module, track) slot, replacing the older one. Throws if its bytes do not match its
    /// CRC-32C or hold a non-finite value (nothing is stored; a task referring to it then fails retryably).
    mutating func store(_ payload: Wire.RoundPayload) throws {
        let crc = CRC32C.checksum(payload.centers)
        guard crc == payload.crc32c else {
            throw WireError(.inconsistent, "round payload \(payload.payloadID): crc32c \(crc) does not match \(payload.crc32c)")
        }
        let centers = FloatBytes.floatsLittleEndian(payload.centers[...])
        guard centers.allSatisfy(\.isFinite) else {
            throw WireError(.invalidField, "round payload \(payload.payloadID) holds non-finite values")
        }
        arrivals += 1
        stored += 1
        entries[Slot(module: payload.module, track: payload.track)] =
            Entry(id: payload.payloadID, crc32c: payload.crc32c, centers: centers, arrival: arrivals)
        while entries.count > Self.maxEntries, let oldest = entries.min(by: { $0.value.arrival < $1.value.arrival }) {
            entries[oldest.key] = nil
        }
    }

    /// The centers of payload `id` if held with exactly the bytes whose CRC-32C is `crc32c`.
    func centers(id: UInt64, crc32c: UInt32) -> [Float]? {
        guard id != 0 else { return nil }
        return entries.values.first { $0.id == id && $0.crc32c == crc32c }?.centers
    }
}
