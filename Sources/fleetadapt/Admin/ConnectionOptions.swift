import ArgumentParser
import CommandSupport
import FleetClient
import Foundation

/// Where the admin commands find the coordinator and the API key. The URL: `--coordinator`
/// (`FLEETADAPT_COORDINATOR`), else `FLEETADAPT_URL`, else the config `fleetadapt login` wrote. The key: the
/// file named by `--key-file`, else `FLEETADAPT_KEY`, else the config's. The key is sent only as a bearer header:
/// never printed, never put in a URL, never passed to another process.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "The coordinator's URL, e.g. https://coordinator.example:8443 (also FLEETADAPT_URL; default: the one `fleetadapt login` saved).")
    var coordinator: String?

    @Option(help: "A file holding the API key (default: FLEETADAPT_KEY, then the key `fleetadapt login` saved).")
    var keyFile: String?

    @Option(help: "PEM file of the certificate authorities that sign the coordinator's certificate, for a private CA (default: the system's, or the one `fleetadapt login` saved).")
    var caFile: String?

    func validate() throws {
        if let coordinator { _ = try Self.checkedURL(coordinator, flag: "--coordinator") }
    }

    /// A URL the client can use: http or https with a host, and no credentials or query in it.
    static func checkedURL(_ text: String, flag: String) throws -> String {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw ValidationError("\(flag) must be an http:// or https:// URL with a host, e.g. https://coordinator.example:8443")
        }
        guard url.user == nil, url.password == nil, url.query == nil else {
            throw ValidationError("\(flag) must not carry credentials or a query; the key goes in a file or FLEETADAPT_KEY")
        }
        return text
    }

    /// The client for the resolved coordinator and key; a missing one is an error saying how to give it.
    func client(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CoordinatorClient {
        let saved = try CLIConfig.load(environment: environment)
        let url: String
        if let coordinator {
            url = coordinator
        } else if let env = environment["FLEETADAPT_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            url = try Self.checkedURL(env, flag: "FLEETADAPT_URL")
        } else if let s = saved?.coordinator {
            url = s
        } else {
            throw ValidationError("no coordinator: pass --coordinator URL, set FLEETADAPT_URL, or run `fleetadapt login`")
        }
        let key: String
        if let keyFile {
            key = try Self.readKey(file: keyFile, flag: "--key-file")
        } else if let env = environment["FLEETADAPT_KEY"].flatMap({ $0.isEmpty ? nil : $0 }) {
            key = env.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let file = saved?.keyFile {
            key = try Self.readKey(file: file, flag: "the key file in \(CLIConfig.path(environment: environment))")
        } else if let k = saved?.key {
            key = k
        } else {
            throw ValidationError("no API key: pass --key-file FILE, set FLEETADAPT_KEY, or run `fleetadapt login`")
        }
        return CoordinatorClient(baseURL: url, token: key, tls: ClientTLS(caFile: caFile ?? saved?.caFile))
    }

    /// The first line of a key file, trimmed; an empty or unreadable file is an error naming it.
    static func readKey(file: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("\(flag): cannot read \(file)") }
        let key = String(decoding: data.prefix(4096), as: UTF8.self).split(whereSeparator: \.isNewline).first
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !key.isEmpty else { throw ValidationError("\(flag): \(file) holds no key") }
        return key
    }
}

/// `$XDG_CONFIG_HOME/fleetadapt/config.json` (default `~/.config/fleetadapt/config.json`): the coordinator, and
/// the key as a file path or (when it was given on standard input or in FLEETADAPT_KEY) the key itself. Written
/// with mode 0600 in a 0700 directory; a config that holds a key and that others may read is refused.
struct CLIConfig: Codable, Equatable {
    var coordinator: String
    var keyFile: String?
    var key: String?
    var caFile: String?

    enum CodingKeys: String, CodingKey {
        case coordinator, key
        case keyFile = "key_file"
        case caFile = "ca_file"
    }

    static func directory(environment: [String: String]) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/fleetadapt" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/fleetadapt"
    }

    static func path(environment: [String: String]) -> String { directory(environment: environment) + "/config.json" }

    static func load(environment: [String: String]) throws -> CLIConfig? {
        let file = path(environment: environment)
        var info = stat()
        guard stat(file, &info) == 0 else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let config: CLIConfig
        do { config = try JSONDecoder().decode(CLIConfig.self, from: data) } catch {
            throw ValidationError("\(file) is not a fleetadapt config (run `fleetadapt login` again): \(error)")
        }
        if config.key != nil, info.st_mode & 0o077 != 0 {
            throw ValidationError("\(file) holds an API key but others may read it: chmod 600 \(file)")
        }
        return config
    }

    /// Writes the config atomically: a 0600 temporary file in the 0700 directory, renamed over the old one.
    func save(environment: [String: String]) throws -> String {
        let dir = Self.directory(environment: environment)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self) + Data("\n".utf8)
        let file = Self.path(environment: environment)
        let temporary = dir + "/.config.json.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let closed = close(fd)
        guard written == data.count, closed == 0, rename(temporary, file) == 0 else {
            unlink(temporary)
            throw ValidationError("cannot write \(file): \(String(cString: strerror(errno)))")
        }
        return file
    }
}

/// `fleetadapt login`: checks the coordinator accepts the key, then saves where to find both.
struct LoginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Save the coordinator's URL and the API key for the admin commands.",
        discussion: HelpText.reflow("""
            The key is read from --key-file (the config then records the file's path, not the key), else from FLEETADAPT_KEY, else from the first line of standard input (the config then holds the key itself). The key is checked against the coordinator before anything is saved. The config is $XDG_CONFIG_HOME/fleetadapt/config.json (default ~/.config/fleetadapt/config.json), mode 0600; the key is never printed.
            """))

    @Option(help: "The coordinator's URL, e.g. https://coordinator.example:8443.")
    var coordinator: String

    @Option(help: "A file holding the API key; the config records its path.")
    var keyFile: String?

    @Option(help: "PEM file of the certificate authorities that sign the coordinator's certificate, for a private CA.")
    var caFile: String?

    func validate() throws {
        _ = try ConnectionOptions.checkedURL(coordinator, flag: "--coordinator")
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw ValidationError("--ca-file: cannot read \(caFile)") }
    }

    func run() throws {
        try AdminExit.guarding {
            let environment = ProcessInfo.processInfo.environment
            var config = CLIConfig(coordinator: coordinator, caFile: caFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
            let key: String
            if let keyFile {
                key = try ConnectionOptions.readKey(file: keyFile, flag: "--key-file")
                config.keyFile = URL(fileURLWithPath: keyFile).standardizedFileURL.path
            } else if let env = environment["FLEETADAPT_KEY"].flatMap({ $0.isEmpty ? nil : $0 }) {
                key = env.trimmingCharacters(in: .whitespacesAndNewlines)
                config.key = key
            } else {
                if isatty(STDIN_FILENO) == 1 { FileHandle.standardError.write(Data("API key: ".utf8)) }
                guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
                    throw ValidationError("no API key: pass --key-file FILE, set FLEETADAPT_KEY, or give it on standard input")
                }
                key = line
                config.key = key
            }
            let client = CoordinatorClient(baseURL: coordinator, token: key, tls: ClientTLS(caFile: config.caFile))
            // Any key may list devices (viewer and up): a refusal here means the key or the URL is wrong.
            _ = try client.exchange("GET", "/v1/devices", query: [("limit", "1")])
            let file = try config.save(environment: environment)
            print("Logged in to \(coordinator); saved in \(file).")
        }
    }
}

/// `fleetadapt logout`: removes the saved config (and with it any saved key).
struct LogoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Remove the config `fleetadapt login` saved.")

    func run() throws {
        let file = CLIConfig.path(environment: ProcessInfo.processInfo.environment)
        if unlink(file) == 0 { print("Removed \(file).") } else if errno != ENOENT {
            throw ValidationError("cannot remove \(file): \(String(cString: strerror(errno)))")
        } else { print("Not logged in (no \(file)).") }
    }
}
