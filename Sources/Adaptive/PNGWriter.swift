/// A minimal PNG encoder (8-bit RGB, one IDAT of stored deflate blocks, CRC-32 and Adler-32 written out): enough
/// for the coefficient heatmap without a graphics dependency, and byte-deterministic.
public enum PNGWriter {
    public static func rgb(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        precondition(pixels.count == width * height * 3, "PNGWriter: pixel count")
        var raw: [UInt8] = []
        raw.reserveCapacity((width * 3 + 1) * height)
        for row in 0..<height {
            raw.append(0)  // filter: none
            raw += pixels[(row * width * 3)..<((row + 1) * width * 3)]
        }
        var header: [UInt8] = []
        header += bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // depth 8, colour type RGB, deflate, no filter method, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header) + chunk("IDAT", zlibStored(raw)) + chunk("IEND", [])
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length >= data.count ? 1 : 0
            out.append(final)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return out + bigEndian(b << 16 | a)
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(crc32(typeBytes + data))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}

/// The coefficient plot: one row of cells per adapter, one column per layer (the mean λ of the layer's modules),
/// blue for negative, white for 0, red for positive, scaled by the largest |λ|; a black bar separates adapters.
/// Labels are in coefficients.json (rows: `adapters`, columns: `layers`).
public enum CoefficientPlot {
    public static func png(_ table: [[Double]], cell: Int = 24) -> [UInt8] {
        let rows = max(1, table.count), columns = max(1, table.first?.count ?? 1)
        let width = columns * cell, height = rows * cell
        let scale = max(1e-12, table.flatMap { $0 }.map(abs).max() ?? 1)
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let (row, column) = (y / cell, x / cell)
                let value = row < table.count && column < table[row].count ? table[row][column] / scale : 0
                let border = y % cell == cell - 1 || x % cell == cell - 1
                let t = min(1, abs(value))
                let faded = UInt8((255 * (1 - t)).rounded())
                let colour: (UInt8, UInt8, UInt8) = border ? (40, 40, 40) : value >= 0 ? (255, faded, faded) : (faded, faded, 255)
                let offset = (y * width + x) * 3
                pixels[offset] = colour.0; pixels[offset + 1] = colour.1; pixels[offset + 2] = colour.2
            }
        }
        return PNGWriter.rgb(width: width, height: height, pixels: pixels)
    }
}
