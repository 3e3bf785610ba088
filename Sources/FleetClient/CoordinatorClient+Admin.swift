import FleetAPI
import Foundation

/// The operator's calls (admin key as the token) that the `fleetadapt` CLI makes. A non-2xx answer throws a
/// `ProblemError` naming the problem's code and fields. Reads are retried (transport errors and 5xx) like every
/// call; writes are tried once by default, since a retried POST could create twice.
extension CoordinatorClient {
    /// Whether `GET /readyz` answers 200 (one try).
    public func ready() throws -> Bool {
        try send("GET", "/readyz", attempts: 1).status == 200
    }

    /// Whether `GET /healthz` answers 200 (one try); the edge server serves it too.
    public func healthy() throws -> Bool {
        try send("GET", "/healthz", attempts: 1).status == 200
    }

    /// `POST /v1/devices`: the device and its token (shown once).
    public func registerDevice(_ registration: DeviceRegistration, attempts: Int = 1) throws -> DeviceCreated {
        try call("POST", "/v1/devices", body: try json(registration), attempts: attempts)
    }

    /// `POST /v1/models?name=…` with the package's bytes.
    public func publishModel(name: String, package: Data, attempts: Int = 1) throws -> ModelView {
        var query = URLComponents()
        query.queryItems = [URLQueryItem(name: "name", value: name)]
        return try call("POST", "/v1/models?" + (query.percentEncodedQuery ?? ""), body: package,
                        contentType: "application/octet-stream", attempts: attempts)
    }

    /// `POST /v1/domains`: the domain and the campaign that rolls it out.
    public func createDomain(_ request: DomainRequest, attempts: Int = 1) throws -> DomainCreated {
        try call("POST", "/v1/domains", body: try json(request), attempts: attempts)
    }

    /// `GET /v1/campaigns/{id}`.
    public func campaign(id: UUID, attempts: Int = 3) throws -> CampaignView {
        try call("GET", "/v1/campaigns/\(id.uuidString.lowercased())", attempts: attempts)
    }

    /// `GET /v1/devices/{id}`.
    public func device(id: UUID, attempts: Int = 3) throws -> Device {
        try call("GET", "/v1/devices/\(id.uuidString.lowercased())", attempts: attempts)
    }

    /// `GET /v1/devices/{id}/config`: the device's current config.
    public func deviceConfig(id: UUID, attempts: Int = 3) throws -> DeviceConfigView {
        try call("GET", "/v1/devices/\(id.uuidString.lowercased())/config", attempts: attempts)
    }

    /// `GET /v1/devices/{id}/metrics?kind=…`: the first page of the device's metrics, oldest first.
    public func metrics(device id: UUID, kind: String? = nil, attempts: Int = 3) throws -> Page<MetricPoint> {
        var query = URLComponents()
        query.queryItems = kind.map { [URLQueryItem(name: "kind", value: $0)] }
        let suffix = query.percentEncodedQuery.map { "?" + $0 } ?? ""
        return try call("GET", "/v1/devices/\(id.uuidString.lowercased())/metrics" + suffix, attempts: attempts)
    }

    /// One typed call: a 2xx answer decoded as `T`, anything else a `ProblemError`.
    func call<T: Decodable>(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json",
                            attempts: Int) throws -> T {
        let r = try send(method, path, body: body, contentType: contentType, attempts: attempts)
        guard (200..<300).contains(r.status) else {
            throw ProblemError(status: r.status, body: r.body, request: "\(method) \(path.split(separator: "?").first ?? "")")
        }
        return try Self.decode(T.self, r.body)
    }
}

/// The operator CLI's calls: each answers the coordinator's body as it came (the wire JSON, so `-o json` prints it
/// unchanged) with the answer's headers (`ETag`), or throws a `ProblemError`. Path ids are lower-case UUIDs; query
/// values are percent-encoded here, never by the caller.
extension CoordinatorClient {
    /// One operator call. Reads are retried (transport errors and 5xx, `attempts` times); a creating POST is
    /// retried only when it carries an `Idempotency-Key`, since the coordinator then answers a repeat with the
    /// first result instead of creating twice.
    public func exchange(_ method: String, _ path: String, query: [(String, String?)] = [], body: Data? = nil,
                         contentType: String = "application/json", headers: [String: String] = [:],
                         attempts: Int? = nil) throws -> Response {
        var components = URLComponents()
        components.queryItems = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        // URLComponents leaves `+` alone in values, which some decoders read as a space: always send it encoded.
        let encoded = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        let target = path + (encoded.map { $0.isEmpty ? "" : "?" + $0 } ?? "")
        let idempotent = method == "GET" || method == "HEAD" || headers["Idempotency-Key"] != nil
        let r = try send(method, target, body: body, contentType: contentType, headers: headers,
                         attempts: attempts ?? (idempotent ? 3 : 1))
        guard (200..<300).contains(r.status) else {
            throw ProblemError(status: r.status, body: r.body, request: "\(method) \(path)")
        }
        return r
    }

    /// `GET /v1/devices?labels=…&status=…`: one page.
    public func listDevices(labels: [String: String]? = nil, status: Device.Status? = nil, limit: Int? = nil,
                            after: String? = nil) throws -> Page<Device> {
        try Self.decode(Page<Device>.self, exchange("GET", "/v1/devices", query: [
            ("labels", labels.map(Self.selectorText)), ("status", status?.rawValue), ("limit", limit.map(String.init)), ("after", after),
        ]).body)
    }

    /// `PATCH /v1/devices/{id}` under `If-Match` (the device's `ETag`, `"v<version>"`): a device changed since it
    /// was read is a 412 `precondition_failed` instead of a lost update.
    public func patchDevice(id: UUID, _ patch: DevicePatch, ifMatch: String?) throws -> Device {
        var headers: [String: String] = [:]
        if let ifMatch { headers["If-Match"] = ifMatch }
        return try Self.decode(Device.self, exchange("PATCH", "/v1/devices/\(id.uuidString.lowercased())", body: try json(patch),
                                                     headers: headers, attempts: 1).body)
    }

    /// `GET /v1/campaigns/{id}/jobs`: one page of the campaign's jobs, raw (their documents vary by kind).
    public func campaignJobs(id: UUID, state: String? = nil, limit: Int? = nil, after: String? = nil) throws -> Response {
        try exchange("GET", "/v1/campaigns/\(id.uuidString.lowercased())/jobs", query: [
            ("state", state), ("limit", limit.map(String.init)), ("after", after),
        ])
    }

    /// `POST /v1/api-keys`: the key's record and its secret, which the coordinator shows only in this answer.
    public func createApiKey(_ request: ApiKeyRequest) throws -> ApiKeyCreated {
        try Self.decode(ApiKeyCreated.self, exchange("POST", "/v1/api-keys", body: try json(request), attempts: 1).body)
    }

    /// `labels=k=v,k2=v2`, the selector syntax of list queries, keys sorted.
    public static func selectorText(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
