import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import HTTPServer
import Learning

/// The edge half of split inference (Neurosurgeon / X-ADMM's edge–end collaboration): a device whose config cuts
/// its network after block k runs the stem and blocks 0…k itself and posts the cut features here; this server runs
/// the rest with the device's own adapters and batch norms and answers the logits.
///
/// It trusts the coordinator, not the device: opening a session reads the device's config from the coordinator
/// with the device's token (so the token is checked there, and the model, variants and cut are the planner's), and
/// downloads the package with the same token. The device contributes only the tensors its adaptation changed.
/// The coordinator's word is re-checked at least every `sessionConfirmationTTL`, so a decommissioned device loses
/// its session within that time.
public final class EdgeServer: Sendable {
    public let configuration: EdgeConfiguration
    let sessions: EdgeSessions
    let server: HTTPServer
    let router: Router

    public init(configuration: EdgeConfiguration) {
        self.configuration = configuration
        let sessions = EdgeSessions(capacity: configuration.maxSessions)
        self.sessions = sessions
        let router = Router()
        let routes = EdgeRoutes(configuration: configuration, sessions: sessions)
        routes.register(on: router)
        // Prometheus exposition of this process (unauthenticated, like the coordinator's: counts and timings only).
        let metrics = EdgeMetrics()
        router.add(.GET, "/metrics") { _ in
            .text(metrics.render(sessions: sessions.count), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        self.router = router
        var http = HTTPServerConfiguration(host: configuration.host, port: configuration.port, threadPoolSize: configuration.threadPoolSize,
                                   accessLog: nil)
        http.tls = configuration.tls
        let logs = configuration.accessLog
        http.accessLogEntries = { entry in
            metrics.observe(entry)
            if logs { HTTPServerConfiguration.structuredAccessLog(entry) }
        }
        server = HTTPServer(configuration: http, router: router)
    }

    public func start() throws { try server.start() }
    /// Reads the TLS certificate and key again (SIGHUP); open connections keep the old ones until they close.
    public func reloadTLS() throws { try server.reloadTLS() }
    public var port: Int { server.boundPort }
    /// Every (method, pattern) served, for the contract test against openapi/edge.yaml.
    public var routes: [(method: HTTPMethod, pattern: String)] { router.routes }
    public func shutdown() { server.shutdown() }
}

/// `PUT /v1/edge/session`, `POST /v1/edge/infer`, `GET /healthz`.
struct EdgeRoutes: Sendable {
    let configuration: EdgeConfiguration
    let sessions: EdgeSessions

    /// The device's tensors for its suffix: adapters and batch norms are a few hundred kB at most.
    static let sessionBodyLimit = 16 << 20

    func register(on router: Router) {
        router.add(.GET, "/healthz") { _ in .json(["status": "ok"]) }
        router.add(.PUT, "/v1/edge/session", options: RouteOptions(bodyLimit: Self.sessionBodyLimit)) { try openSession($0) }
        // Room for 64 channels at 28×28 per image; the largest cut of the packages we build is 16×28×28 (50 kB).
        router.add(.POST, "/v1/edge/infer", options: RouteOptions(bodyLimit: configuration.maxBatch * 64 * 28 * 28 * 4 + 4096)) { try infer($0) }
    }

    static func key(_ token: String) -> String { CoordinatorClient.sha256Hex(Data(token.utf8)) }

    func openSession(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let token = request.bearerToken else { throw HTTPError.unauthorized("A device token is required (Authorization: Bearer …).") }
        let uploaded: [String: SafeTensor]
        do {
            uploaded = try SafeTensors.decode(try request.bodyBytes()).tensors
        } catch {
            throw HTTPError.validation([FieldError(field: "body", message: "not a safetensors file: \(error)")])
        }
        let coordinator = CoordinatorClient(baseURL: configuration.coordinatorURL, token: token, tls: configuration.coordinatorTLS)
        let answer: CoordinatorClient.ConfigAnswer
        do {
            answer = try coordinator.config(attempts: 2)
        } catch is DecodingError {
            throw HTTPError.serviceUnavailable("The coordinator's config could not be read.", retryAfter: 2)
        } catch {
            throw HTTPError.serviceUnavailable("The coordinator cannot be reached: \(error)", retryAfter: 2)
        }
        let config: DeviceConfigView
        switch answer {
        case .config(let view): config = view
        case .refused(let status) where status != 404: throw HTTPError.unauthorized("The coordinator does not accept this device token.")
        case .noConfig: throw HTTPError.conflict("The coordinator has no config for this device yet.", code: "no_config")
        case .refused: throw HTTPError.unauthorized("The coordinator no longer accepts this device (decommissioned).")
        case .unexpected(let status):
            throw HTTPError.serviceUnavailable("The coordinator answered HTTP \(status) for the device's config.", retryAfter: 2)
        }
        guard let partition = config.decision.partition else {
            throw HTTPError.conflict("Config version \(config.version) runs the whole network on the device; there is nothing to run here.",
                                     code: "not_split")
        }
        let network: ElasticNetwork
        do {
            let path = try PackageCache(directory: configuration.cacheDirectory, client: coordinator).file(for: config.decision.modelID)
            network = try ElasticPackage.loadNetwork(path: path)
            try network.compose(ids: config.decision.variants.map(\.variant))
        } catch {
            throw HTTPError.serviceUnavailable("Model \(config.decision.modelID) could not be loaded: \(error)", retryAfter: 5)
        }
        let split = partition.splitAfterBlock
        guard (-1..<network.positions.count).contains(split) else {
            throw HTTPError.serviceUnavailable("The config cuts after block \(split), which model \(config.decision.modelID) lacks.", retryAfter: 5)
        }
        // Only the suffix's adapters and the tensors of the variants it runs there may be replaced.
        var allowed = Set<String>()
        for p in (split + 1)..<network.positions.count {
            allowed.formUnion(network.adapterTensorNames(position: p))
            allowed.formUnion(network.tensorNames(position: p, variant: network.choice[p]))
        }
        var errors: [FieldError] = []
        var values: [(String, [Float])] = []
        for name in uploaded.keys.sorted() {
            let t = uploaded[name]!
            guard allowed.contains(name), let entry = network.model.store.entry(name) else {
                errors.append(FieldError(field: "tensors.\(name)", message: "not a tensor of the blocks after the cut (block \(split)) in this device's combination"))
                continue
            }
            guard t.shape == entry.shape, let floats = try? t.floats() else {
                errors.append(FieldError(field: "tensors.\(name)", message: "must be F32 of shape \(entry.shape), got \(t.dtype.rawValue) \(t.shape)"))
                continue
            }
            guard floats.allSatisfy(\.isFinite) else {
                errors.append(FieldError(field: "tensors.\(name)", message: "has values that are not finite"))
                continue
            }
            values.append((name, floats))
        }
        guard errors.isEmpty else { throw HTTPError.validation(errors) }
        for (name, floats) in values { try network.model.store.set(name, floats) }
        let session = try EdgeSession(deviceID: config.deviceID, configVersion: config.version, modelID: config.decision.modelID,
                                  splitAfterBlock: split, network: network)
        sessions.put(session, key: Self.key(token))
        return .json(EdgeSessionView(deviceID: session.deviceID, configVersion: session.configVersion, modelID: session.modelID,
                                     splitAfterBlock: split, cutShape: session.cutShape, classes: session.classes,
                                     tensorsInstalled: values.count))
    }

    /// A session lives only as long as the coordinator accepts its device: once the last confirmation is older
    /// than the TTL, the coordinator is asked again with the request's token (the device's config, as when the
    /// session opened). A device it no longer accepts — decommissioned (404), token unknown (401) or of another
    /// kind (403), or now another device — loses its session: 401 (409 `no_config` if it has no config any more).
    /// An unreachable coordinator is a 503 and the session stays, so inference resumes when the coordinator is back.
    func confirm(_ session: EdgeSession, token: String, key: String) throws {
        let now = ContinuousClock.now
        guard session.needsConfirmation(ttl: configuration.sessionConfirmationTTL, now: now) else { return }
        let answer: CoordinatorClient.ConfigAnswer
        do {
            answer = try CoordinatorClient(baseURL: configuration.coordinatorURL, token: token, tls: configuration.coordinatorTLS).config(attempts: 1)
        } catch is DecodingError {
            throw HTTPError.serviceUnavailable("The coordinator's config could not be read.", retryAfter: 2)
        } catch {
            throw HTTPError.serviceUnavailable("The coordinator cannot be reached to confirm this device's session: \(error)", retryAfter: 2)
        }
        let gone = HTTPError.unauthorized("The coordinator no longer accepts this device (decommissioned or its token revoked); its edge session is closed.")
        switch answer {
        case .config(let config):
            guard config.deviceID == session.deviceID else {
                sessions.remove(key, ifStill: session)
                throw gone
            }
            session.confirmed(at: now)
        case .noConfig:
            sessions.remove(key, ifStill: session)
            throw HTTPError.conflict("The coordinator has no config for this device any more; its edge session is closed.", code: "no_config")
        case .refused:
            sessions.remove(key, ifStill: session)
            throw gone
        case .unexpected(let status):
            throw HTTPError.serviceUnavailable("The coordinator answered HTTP \(status) for the device's config.", retryAfter: 2)
        }
    }

    func infer(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let token = request.bearerToken else { throw HTTPError.unauthorized("A device token is required (Authorization: Bearer …).") }
        let key = Self.key(token)
        guard let session = sessions.get(key) else {
            throw HTTPError.conflict("No session for this device: open one with PUT /v1/edge/session.", code: "no_session")
        }
        try confirm(session, token: token, key: key)
        let tensors: [String: SafeTensor]
        do {
            tensors = try SafeTensors.decode(try request.bodyBytes()).tensors
        } catch {
            throw HTTPError.validation([FieldError(field: "body", message: "not a safetensors file: \(error)")])
        }
        guard let x = tensors["x"] else { throw HTTPError.validation([FieldError(field: "x", message: "required: the features after the cut")]) }
        guard x.shape.count == 4, Array(x.shape.dropFirst()) == session.cutShape, (1...configuration.maxBatch).contains(x.shape[0]),
              let floats = try? x.floats() else {
            throw HTTPError.validation([FieldError(field: "x", message: "must be F32 of shape [N, \(session.cutShape.map(String.init).joined(separator: ", "))] with 1 ≤ N ≤ \(configuration.maxBatch), got \(x.dtype.rawValue) \(x.shape)")])
        }
        guard floats.allSatisfy(\.isFinite) else { throw HTTPError.validation([FieldError(field: "x", message: "has values that are not finite")]) }
        let logits = session.infer(Tensor(shape: x.shape, data: floats))
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/octet-stream")
        headers.set("X-Config-Version", String(session.configVersion))
        return HTTPResponse(status: 200, headers: headers,
                            body: SafeTensors.encode(["logits": SafeTensor(floats: logits.data, shape: logits.shape)]))
    }
}
