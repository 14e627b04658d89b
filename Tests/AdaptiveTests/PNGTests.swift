import Testing
@testable import Adaptive

@Suite("PNG writer")
struct PNGTests {
    @Test("known CRC-32 and Adler-32 values; a well-formed PNG")
    func format() {
        #expect(PNGWriter.crc32(Array("IEND".utf8)) == 0xAE42_6082)
        #expect(PNGWriter.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        let zlib = PNGWriter.zlibStored(Array("Wikipedia".utf8))
        #expect(Array(zlib.suffix(4)) == [0x11, 0xE6, 0x03, 0x98])  // Adler-32 of "Wikipedia"
        let png = CoefficientPlot.png([[0.5, -1], [0, 0.25]], cell: 4)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(png.suffix(12)) == [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        #expect(CoefficientPlot.png([[0.5, -1], [0, 0.25]], cell: 4) == png)
    }
}
