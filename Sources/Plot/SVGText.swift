/// Low-level SVG text helpers (number printing, escaping, hashing).
public enum SVGText {
    /// A pixel coordinate with at most 2 decimals, trailing zeros trimmed, no "-0"
    /// (e.g. 12.345 -> "12.35", 3.0 -> "3"). Non-finite values print as "0" (never emitted by the
    /// renderer, which skips them).
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        return TickFormatter.fixed(v, places: 2)
    }

    /// Escapes text for XML character data and attribute values (&, <, >, ", ') and drops the
    /// control characters that XML 1.0 forbids.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(ch)
            default:
                if ch.value < 0x20 || ch.value == 0xFFFE || ch.value == 0xFFFF { continue }
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// FNV-1a 64-bit hash of the UTF-8 bytes (stable across runs and platforms).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// Keeps [A-Za-z0-9_-] and makes the result start with a letter.
    static func sanitizeID(_ s: String) -> String {
        var out = String(s.unicodeScalars.filter {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
        })
        if out.isEmpty || !(out.unicodeScalars.first!.properties.isAlphabetic) { out = "p" + out }
        return out
    }

    /// Rough width in px of `s` at `fontSize` (average glyph ≈ 0.6 em) for layout decisions.
    static func width(_ s: String, fontSize: Double) -> Double {
        Double(s.count) * fontSize * 0.6
    }
}
