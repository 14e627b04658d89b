import CZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A CURVE key pair as Z85 text (40 characters each), the form ZeroMQ's options and Brickyard's key files use.
public struct CurveKeyPair: Sendable, Equatable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (libsodium's random source).
    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: Self.string(publicKey), secretKey: Self.string(secretKey))
    }

    /// The key pair of a secret key (the public key is derived, so only the secret needs to be stored).
    public init(secretKey: String) throws {
        guard CurveKeyFiles.isZ85Key(secretKey) else { throw CurveKeyError("not a 40-character Z85 CURVE key") }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { throw ZMQError.last("zmq_curve_public") }
        self.init(publicKey: Self.string(publicKey), secretKey: secretKey)
    }

    static func string(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A key file that cannot be used: one line naming the file and what is wrong.
public struct CurveKeyError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Brickyard's CURVE key files (see docs in README "Encryption and authentication"):
/// `NAME.secret` (mode 0600) and `NAME.public` (mode 0644), each one line holding a 40-character Z85 key.
/// Readers ignore surrounding whitespace and lines starting with `#`.
public enum CurveKeyFiles {
    public static let secretSuffix = ".secret"
    public static let publicSuffix = ".public"

    /// Writes `NAME.secret` and `NAME.public` into `directory` (created with mode 0700 if missing). Existing
    /// files are an error unless `overwrite`. The secret file is created with mode 0600 from the start (never
    /// readable by others, not even briefly), written to a temporary name, fsynced and renamed.
    @discardableResult
    public static func write(_ pair: CurveKeyPair, directory: String, name: String,
                             overwrite: Bool = false) throws -> (publicPath: String, secretPath: String) {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
              !name.hasPrefix(".") else {
            throw CurveKeyError("key name '\(name)' must be letters, digits, '.', '_' or '-' (not starting with '.')")
        }
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw CurveKeyError("\(directory): cannot create key directory: \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw CurveKeyError("\(directory): exists and is not a directory")
        }
        let secretPath = directory + "/" + name + secretSuffix
        let publicPath = directory + "/" + name + publicSuffix
        if !overwrite {
            for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
                throw CurveKeyError("\(path): already exists (pass --force to replace it)")
            }
        }
        try writeFile(pair.secretKey + "\n", to: secretPath, mode: 0o600)
        try writeFile(pair.publicKey + "\n", to: publicPath, mode: 0o644)
        return (publicPath, secretPath)
    }

    /// Reads a `.secret` file and derives its public key. Refuses a secret file that others can read.
    public static func readSecret(path: String) throws -> CurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else { throw CurveKeyError("\(path): cannot read secret key file: \(String(cString: strerror(errno)))") }
        guard info.st_mode & 0o077 == 0 else {
            throw CurveKeyError("\(path): secret key file is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let key = try readKey(path: path, what: "secret")
        do {
            return try CurveKeyPair(secretKey: key)
        } catch {
            throw CurveKeyError("\(path): \(error)")
        }
    }

    /// Reads a `.public` file.
    public static func readPublic(path: String) throws -> String {
        try readKey(path: path, what: "public")
    }

    /// Every `*.public` key in `directory` (other files are ignored). An empty or unreadable directory is an
    /// error: a coordinator that allows nobody is a configuration mistake, not a policy.
    public static func readAllowed(directory: String) throws -> Set<String> {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CurveKeyError("\(directory): cannot list allowed public keys: \(error.localizedDescription)")
        }
        var keys = Set<String>()
        for entry in entries.sorted() where entry.hasSuffix(publicSuffix) {
            keys.insert(try readPublic(path: directory + "/" + entry))
        }
        guard !keys.isEmpty else { throw CurveKeyError("\(directory): no *\(publicSuffix) key files: no worker could join") }
        return keys
    }

    /// Z85 of a 32-byte key: 40 characters of the Z85 alphabet.
    public static func isZ85Key(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { z85Alphabet.contains($0) }
    }

    /// Z85 text of a raw 32-byte key (ZAP requests carry keys in binary).
    public static func z85(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard bytes.withUnsafeBufferPointer({ zmq_z85_encode(&text, $0.baseAddress, 32) }) != nil else { return nil }
        return CurveKeyPair.string(text)
    }

    private static let z85Alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    private static func readKey(path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CurveKeyError("\(path): cannot read \(what) key file")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1, isZ85Key(lines[0]) else {
            throw CurveKeyError("\(path): expected one line with a 40-character Z85 CURVE \(what) key")
        }
        return lines[0]
    }

    private static func writeFile(_ text: String, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CurveKeyError("\(temporary): cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // open's mode is filtered by the umask; set it exactly.
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            unlink(temporary)
            throw CurveKeyError("\(temporary): cannot write: \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CurveKeyError("\(path): cannot rename into place: \(String(cString: strerror(errno)))")
        }
    }
}
