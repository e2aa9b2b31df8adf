import CZlib
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// A parsed XML document (an SVG): element names and classes in document order.
final class ParsedXML: NSObject, XMLParserDelegate {
    struct ParseError: Error, CustomStringConvertible { var description: String }
    private(set) var elements: [(name: String, cls: String)] = []

    init(_ text: String) throws {
        super.init()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = self
        guard parser.parse() else {
            throw ParseError(description: "not well-formed XML: \(String(describing: parser.parserError))")
        }
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append((name, attributes["class"] ?? ""))
    }

    func count(_ name: String, class cls: String? = nil) -> Int {
        elements.filter { $0.name == name && (cls == nil || $0.cls == cls) }.count
    }
}

/// A minimal PNG decoder (8-bit greyscale, RGB, RGBA, grey+alpha; no interlacing) — enough for
/// Chromium's screenshots. Pixels as luminance in [0, 255].
struct PNGImage {
    struct DecodeError: Error, CustomStringConvertible { var description: String }
    var width = 0, height = 0
    var luminance: [Double] = []

    init(data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count > 8, bytes[0..<8].elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]) else {
            throw DecodeError(description: "not a PNG file")
        }
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        var i = 8, idat: [UInt8] = [], depth = 0, colorType = 0, interlace = 0
        while i + 8 <= bytes.count {
            let length = be32(i), type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            let body = Array(bytes[(i + 8)..<min(i + 8 + length, bytes.count)])
            switch type {
            case "IHDR":
                width = be32(i + 8); height = be32(i + 12)
                depth = Int(body[8]); colorType = Int(body[9]); interlace = Int(body[12])
            case "IDAT": idat += body
            default: break
            }
            i += 12 + length
            if type == "IEND" { break }
        }
        guard depth == 8, interlace == 0 else { throw DecodeError(description: "bit depth \(depth), interlace \(interlace) not supported") }
        let channels: Int
        switch colorType {
        case 0: channels = 1
        case 2: channels = 3
        case 4: channels = 2
        case 6: channels = 4
        default: throw DecodeError(description: "colour type \(colorType) not supported")
        }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var rawLength = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            idat.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else { throw DecodeError(description: "zlib status \(status)") }
        // Undo the per-row filters (PNG spec §9).
        var pixels = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)], row = y * (stride + 1) + 1
            for x in 0..<stride {
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let v = Int(raw[row + x])
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw DecodeError(description: "filter \(filter)")
                }
                pixels[y * stride + x] = UInt8((v + predicted) & 0xFF)
            }
        }
        luminance = (0..<(width * height)).map { p in
            let o = p * channels
            if channels < 3 { return Double(pixels[o]) }
            return 0.2126 * Double(pixels[o]) + 0.7152 * Double(pixels[o + 1]) + 0.0722 * Double(pixels[o + 2])
        }
    }

    var variance: Double {
        let n = Double(luminance.count), m = luminance.reduce(0, +) / n
        return luminance.reduce(0) { $0 + ($1 - m) * ($1 - m) } / n
    }
}
