import Foundation

/// A row value made without data, to read a row type's columns when a table has no rows (its CSV
/// still gets the header): decodes every key as 0, `""`, `false` or absent (optionals).
enum ColumnProbe {
    /// A `T` whose stored properties hold zero values; nil when `T` decodes something other than
    /// flat numbers, strings and booleans.
    static func placeholder<T: Decodable>(_ type: T.Type) -> T? { try? T(from: ProbeDecoder()) }

    private struct ProbeDecoder: Decoder {
        var codingPath: [CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] = [:]
        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>())
        }
        func unkeyedContainer() throws -> UnkeyedDecodingContainer { throw Unsupported() }
        func singleValueContainer() throws -> SingleValueDecodingContainer { throw Unsupported() }
    }

    private struct Unsupported: Error {}

    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        var codingPath: [CodingKey] = []
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { true }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { false }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { "" }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { 0 }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { 0 }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { 0 }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: ProbeDecoder()) }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey> { KeyedDecodingContainer(Keyed<NestedKey>()) }
        func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { throw Unsupported() }
        func superDecoder() throws -> Decoder { ProbeDecoder() }
        func superDecoder(forKey key: Key) throws -> Decoder { ProbeDecoder() }
    }
}
