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
