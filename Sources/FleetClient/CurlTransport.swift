internal import CCurl
import Foundation
import Synchronization

/// How the client checks the server it talks to over HTTPS. The server's certificate is always verified, and so
/// is its name against the URL's host; `caFile` replaces the system's certificate authorities with the ones in
/// that PEM file (a private CA, as a fleet's coordinator usually has).
public struct ClientTLS: Sendable, Equatable {
    public var caFile: String?

    public init(caFile: String? = nil) {
        self.caFile = caFile
    }
}

/// One HTTP exchange at a time per libcurl easy handle, from a small pool so that concurrent callers (the agent's
/// poll and its heartbeat thread) each get their own and a handle's kept-alive connection is reused by the next
/// request. libcurl rather than URLSession: on Linux URLSession cannot be given a certificate authority.
final class CurlTransport: Sendable {
    struct Exchange {
        var method: String
        var url: String
        var headers: [(String, String)]
        var body: Data?
    }

    let tls: ClientTLS
    /// Seconds without a byte received before an exchange is abandoned.
    let timeoutSeconds: Int
    /// An answer larger than this aborts the transfer (the largest thing a coordinator sends is a model package).
    let maxResponseBytes: Int
    private let idle = Mutex<[EasyHandle]>([])

    init(tls: ClientTLS, timeoutSeconds: Int = 90, maxResponseBytes: Int = 1 << 30) {
        _ = curlGlobalInit
        self.tls = tls
        self.timeoutSeconds = timeoutSeconds
        self.maxResponseBytes = maxResponseBytes
    }

    func perform(_ exchange: Exchange) throws -> CoordinatorClient.Response {
        let handle = try idle.withLock { $0.popLast() } ?? EasyHandle()
        defer { idle.withLock { if $0.count < 8 { $0.append(handle) } } }
        return try handle.perform(exchange, tls: tls, timeoutSeconds: timeoutSeconds, maxResponseBytes: maxResponseBytes)
    }
}

/// `curl_global_init` must run once before any thread uses libcurl; a global's initializer runs exactly once.
private let curlGlobalInit: Void = {
    _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

struct CurlError: Error, CustomStringConvertible {
    let description: String
    /// False where trying again cannot help: the server's certificate or name does not verify, the CA file is
    /// unreadable, the URL is malformed or of another scheme.
    var retryable = true
}

/// Owns one `CURL *`. `@unchecked Sendable`: a handle is used by one thread at a time — `CurlTransport` takes it
/// out of its pool for one exchange and puts it back afterwards — which is the rule libcurl sets for easy handles.
final class EasyHandle: @unchecked Sendable {
    private let raw: UnsafeMutableRawPointer

    init() throws {
        guard let raw = curl_easy_init() else { throw CurlError(description: "curl_easy_init failed") }
        self.raw = raw
    }

    deinit { curl_easy_cleanup(raw) }

    func perform(_ exchange: CurlTransport.Exchange, tls: ClientTLS, timeoutSeconds: Int,
                 maxResponseBytes: Int) throws -> CoordinatorClient.Response {
        curl_easy_reset(raw)  // options back to defaults; the connection cache stays
        let sink = ResponseSink(limit: maxResponseBytes)
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        var errorText = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in exchange.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        let method = exchange.method.uppercased()
        let body = exchange.body ?? (["POST", "PUT", "PATCH"].contains(method) ? Data() : nil)

        let code: CURLcode = exchange.url.withCString { url in
            (tls.caFile ?? "").withCString { caFile in
                "http,https".withCString { protocols in
                    method.withCString { methodName in
                        errorText.withUnsafeMutableBufferPointer { errorBuffer in
                            withBody(body) { bodyPointer, bodyCount in
                                var set = CURLE_OK
                                func check(_ result: CURLcode) { if set == CURLE_OK { set = result } }
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_URL, url))
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_PROTOCOLS_STR, protocols))
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_ERRORBUFFER, errorBuffer.baseAddress))
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_NOSIGNAL, 1))
                                // An idle limit, as URLSession's request timeout is: a long-poll sends nothing for
                                // up to a minute, a large package may take longer than that in all.
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_LOW_SPEED_LIMIT, 1))
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_LOW_SPEED_TIME, timeoutSeconds))
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_CONNECTTIMEOUT, 10))
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_SSL_VERIFYPEER, 1))
                                check(fleetadapt_curl_setopt_long(raw, CURLOPT_SSL_VERIFYHOST, 2))
                                if tls.caFile != nil {
                                    check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_CAINFO, caFile))
                                }
                                switch method {
                                case "GET": check(fleetadapt_curl_setopt_long(raw, CURLOPT_HTTPGET, 1))
                                case "HEAD": check(fleetadapt_curl_setopt_long(raw, CURLOPT_NOBODY, 1))
                                default: check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_CUSTOMREQUEST, methodName))
                                }
                                if let bodyPointer {
                                    check(fleetadapt_curl_setopt_off(raw, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bodyCount)))
                                    check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_POSTFIELDS, bodyPointer))
                                }
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_HTTPHEADER, headerList))
                                check(fleetadapt_curl_setopt_write_function(raw, CURLOPT_WRITEFUNCTION, curlReceiveBody))
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_WRITEDATA, sinkPointer))
                                check(fleetadapt_curl_setopt_write_function(raw, CURLOPT_HEADERFUNCTION, curlReceiveHeader))
                                check(fleetadapt_curl_setopt_pointer(raw, CURLOPT_HEADERDATA, sinkPointer))
                                guard set == CURLE_OK else { return set }
                                return curl_easy_perform(raw)
                            }
                        }
                    }
                }
            }
        }
        guard code == CURLE_OK else {
            if sink.overflowed {
                throw CurlError(description: "the answer exceeds \(maxResponseBytes) bytes")
            }
            let detail = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let permanent: Set<CURLcode> = [CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
                                            CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT]
            throw CurlError(description: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail,
                            retryable: !permanent.contains(code))
        }
        var status = 0
        _ = fleetadapt_curl_getinfo_long(raw, CURLINFO_RESPONSE_CODE, &status)
        return CoordinatorClient.Response(status: status, body: sink.body, headers: sink.headers)
    }
}

/// Calls `body` with the bytes of `data` (nil when there is no body), kept alive for the call.
private func withBody<R>(_ data: Data?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let data else { return body(nil, 0) }
    if data.isEmpty {
        return "".withCString { body(UnsafeRawPointer($0), 0) }
    }
    return data.withUnsafeBytes { body($0.baseAddress, $0.count) }
}

/// What one exchange received: the body (bounded) and the headers of the final answer, names in lower case.
final class ResponseSink {
    let limit: Int
    var body = Data()
    var headers: [String: String] = [:]
    var overflowed = false

    init(limit: Int) { self.limit = limit }
}

/// libcurl's write callback: appends to the sink; returning less than it was given aborts the transfer.
private func curlReceiveBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                             _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
    let n = size * count
    guard sink.body.count + n <= sink.limit else {
        sink.overflowed = true
        return 0
    }
    sink.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: n)
    return n
}

/// libcurl's header callback, one header line per call; a status line (a 100 Continue before the answer, say)
/// starts the header set afresh.
private func curlReceiveHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                               _ context: UnsafeMutableRawPointer?) -> Int {
    guard let data, let context else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        sink.headers = [:]
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        if !name.isEmpty { sink.headers[name] = value }
    }
    return n
}
