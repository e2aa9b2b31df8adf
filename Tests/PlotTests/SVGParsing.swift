import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// A parsed SVG document: every element in document order with its attributes and direct text.
final class ParsedSVG: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
        var depth: Int
        var cls: String { attributes["class"] ?? "" }
    }

    private(set) var elements: [Element] = []
    private var stack: [Int] = []

    /// Parses `svg` with Foundation's XMLParser; fails the test on a parse error.
    static func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> ParsedSVG {
        let doc = ParsedSVG()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = doc
        let ok = parser.parse()
        XCTAssertTrue(ok, "SVG is not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        return doc
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        elements.append(Element(name: name, attributes: attributes, text: "", depth: stack.count))
        stack.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        stack.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = stack.last { elements[i].text += string }
    }

    /// Elements named `name`, optionally with exactly the class `cls`.
    func all(_ name: String, class cls: String? = nil) -> [Element] {
        elements.filter { $0.name == name && (cls == nil || $0.cls == cls) }
    }

    func count(_ name: String, class cls: String? = nil) -> Int { all(name, class: cls).count }

    /// Texts of the `<text>` elements with class `cls`, in document order.
    func texts(_ cls: String) -> [String] { all("text", class: cls).map(\.text) }
}

/// Number of subpaths (moveto commands) in SVG path data.
func subpathCount(_ d: String) -> Int { d.filter { $0 == "M" }.count }
