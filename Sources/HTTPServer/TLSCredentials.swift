import Foundation

/// HTTPS for the daemon: PEM files of the server's certificate chain and its private key, read at start and again
/// by `HTTPServer.reloadTLS()` (a renewed certificate is served to new connections without dropping open ones).
public struct TLSConfiguration: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    /// GnuTLS priority string: TLS 1.2 and 1.3 only, GnuTLS's default ciphers within them.
    public var priorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

    public init(certificateFile: String, keyFile: String) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }
}

public enum TLSConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    case unreadable(file: String, reason: String)
    case notPEM(file: String)
    case unsupported
    case rejected
    case notConfigured
    case notRunning

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "cannot read \(file): \(reason)"
        case .notPEM(let file): "\(file) is not a PEM file (no -----BEGIN line)"
        case .unsupported: "this libmicrohttpd was built without TLS support"
        case .rejected: "the TLS certificate and key were refused (not a certificate, or a key of another one; GnuTLS's reason is logged above)"
        case .notConfigured: "the server was started without TLS"
        case .notRunning: "the server is not running"
        }
    }
}

/// The certificate, key and priorities as NUL-terminated C strings at stable addresses, for
/// `MHD_OPTION_HTTPS_MEM_CERT` / `_KEY` / `_PRIORITIES`; kept alive as long as the daemon that was given them.
/// The key's copy is zeroed before it is freed. `@unchecked Sendable`: the three C strings are written once in
/// `init` and only read afterwards (by MHD, while the daemon starts), then freed in `deinit`.
final class TLSCredentials: @unchecked Sendable {
    let certificate: UnsafeMutablePointer<CChar>
    let key: UnsafeMutablePointer<CChar>
    let priorities: UnsafeMutablePointer<CChar>
    private let keyLength: Int

    init(loading configuration: TLSConfiguration) throws {
        let certificateText = try Self.readPEM(configuration.certificateFile)
        let keyText = try Self.readPEM(configuration.keyFile)
        certificate = strdup(certificateText)
        key = strdup(keyText)
        keyLength = keyText.utf8.count
        priorities = strdup(configuration.priorities)
    }

    deinit {
        memset(key, 0, keyLength)
        free(certificate)
        free(key)
        free(priorities)
    }

    private static func readPEM(_ path: String) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TLSConfigurationError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        guard data.count < 1 << 20, !data.contains(0), let text = String(data: data, encoding: .utf8),
              text.contains("-----BEGIN ") else {
            throw TLSConfigurationError.notPEM(file: path)
        }
        return text
    }
}
