import Crypto
import FleetAPI
import Foundation

/// The typed, blocking HTTP client of the coordinator's API (agent, edge runtime and CLI alike), with retries:
/// network errors and 5xx answers are retried with exponential backoff and jitter (the coordinator may be
/// restarting); 4xx answers are returned to the caller. What must reach the coordinator (results, the poll) goes
/// through `sendUntilAnswered`, which never gives up. Typed calls are in `CoordinatorClient+Agent.swift` and
/// `CoordinatorClient+Admin.swift`; bodies are coded with `WireJSON`.
public final class CoordinatorClient: Sendable {
    public let baseURL: String
    let token: String
    let transport: CurlTransport

    public struct Response: Sendable {
        public let status: Int
        public let body: Data
        public let headers: [String: String]
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        /// What the last try ran into (a transport error, an HTTP status), without the request's name.
        public var cause: String?

        public init(description: String, cause: String? = nil) {
            self.description = description
            self.cause = cause
        }
    }

    /// `tls` says how an `https://` coordinator is verified (its certificate and name always are; `caFile` names
    /// the certificate authorities to trust instead of the system's).
    public init(baseURL: String, token: String, tls: ClientTLS = ClientTLS()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        transport = CurlTransport(tls: tls)
    }

    public var tls: ClientTLS { transport.tls }

    /// Sends one request, retrying transport errors and 5xx up to `attempts` times (base delay 0.2 s, ×2, ±25%).
    public func send(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json",
                     headers: [String: String] = [:], attempts: Int = 8, shouldStop: @Sendable () -> Bool = { false }) throws -> Response {
        var delay = 0.2
        var last = "no attempt"
        for attempt in 1...attempts {
            if shouldStop() { throw Failure(description: "stopped") }
            var fields: [(String, String)] = [("Authorization", "Bearer \(token)")]
            for (k, v) in headers.sorted(by: { $0.key < $1.key }) { fields.append((k, v)) }
            if body != nil { fields.append(("Content-Type", contentType)) }
            let result: Result<Response, Error>
            do {
                result = .success(try transport.perform(.init(method: method, url: baseURL + path, headers: fields, body: body)))
            } catch let error as CurlError where !error.retryable {
                throw Failure(description: "\(method) \(path) failed: \(error)", cause: error.description)
            } catch {
                result = .failure(error)
            }
            switch result {
            case .success(let r) where r.status < 500:
                return r
            case .success(let r):
                last = "HTTP \(r.status)"
            case .failure(let e):
                last = "\(e)"
            }
            if attempt < attempts {
                Thread.sleep(forTimeInterval: delay * Double.random(in: 0.75...1.25))
                delay = min(delay * 2, 10)
            }
        }
        throw Failure(description: "\(method) \(path) failed after \(attempts) attempts: \(last)", cause: last)
    }

    /// Sends one request until the coordinator answers it, however long it is away: transport errors, 5xx and 429
    /// are retried with capped exponential backoff and jitter (0.5 s, ×2, up to `maxDelay`, ±25%), each failure
    /// reported to `onFailure` as one log line. Only `shouldStop` ends the retries (throwing `Failure("stopped")`).
    public func sendUntilAnswered(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json",
                                  headers: [String: String] = [:], maxDelay: Double = 30,
                                  shouldStop: @Sendable () -> Bool = { false },
                                  onFailure: (String) -> Void) throws -> Response {
        var delay = min(0.5, maxDelay)
        var failures = 0
        while true {
            if shouldStop() { throw Failure(description: "stopped") }
            let problem: String
            do {
                let r = try send(method, path, body: body, contentType: contentType, headers: headers, attempts: 1)
                if r.status != 429 { return r }
                problem = "HTTP 429 (rate limited)"
            } catch let failure as Failure {
                problem = failure.cause ?? failure.description
            }
            failures += 1
            let wait = delay * Double.random(in: 0.75...1.25)
            onFailure(String(format: "agent: %@ %@ failed (%d in a row), next try in %.1f s: %@", method, path, failures, wait, problem))
            // Sleep in short slices so that a stop request is honoured at once.
            let until = ContinuousClock.now + .milliseconds(Int(wait * 1000))
            while ContinuousClock.now < until {
                if shouldStop() { throw Failure(description: "stopped") }
                Thread.sleep(forTimeInterval: 0.1)
            }
            delay = min(delay * 2, maxDelay)
        }
    }

    /// A request body in the wire format (`WireJSON`).
    public func json<T: Encodable>(_ value: T) throws -> Data {
        try WireJSON.encode(value)
    }

    /// An answer's body in the wire format; a timestamp that does not parse is an error.
    public static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        try WireJSON.decode(type, from: data)
    }

    /// How a typed call is retried: a bounded number of tries (transport errors and 5xx), or until the coordinator
    /// answers (`sendUntilAnswered`: also 429, however long it is away, until `shouldStop`).
    public enum Retry: Sendable {
        case attempts(Int)
        case untilAnswered(maxDelay: Double, shouldStop: @Sendable () -> Bool, onFailure: @Sendable (String) -> Void)
    }

    /// One request under a retry policy.
    public func send(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json",
                     headers: [String: String] = [:], retry: Retry) throws -> Response {
        switch retry {
        case .attempts(let n):
            return try send(method, path, body: body, contentType: contentType, headers: headers, attempts: n)
        case .untilAnswered(let maxDelay, let shouldStop, let onFailure):
            return try sendUntilAnswered(method, path, body: body, contentType: contentType, headers: headers, maxDelay: maxDelay,
                                         shouldStop: shouldStop, onFailure: onFailure)
        }
    }

    public static func sha256Hex(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
