import ElasticModel
import FleetAPI
import Foundation
import HTTPServer
import ImageIO
import Learning

/// The inference service's routes (contract: openapi/agent.yaml). Bad input is a 4xx problem+json naming the
/// field (`body`, `shape`, `data[i]`, `items[i].image`, `k`, `Content-Type`); a body over 16 MiB is 413.
struct PredictRoutes: Sendable {
    let service: InferenceService

    static let bodyLimit = 16 << 20
    static let maxBatch = 64
    static let defaultK = 3

    func register(on router: Router) {
        let options = RouteOptions(bodyLimit: Self.bodyLimit)
        router.add(.GET, "/healthz") { _ in
            .json(["status": "ok", "serving": service.served == nil ? "none" : "generation \(service.served!.generation)"])
        }
        router.add(.GET, "/metrics") { _ in
            .text(service.metrics.render(served: service.served, drift: service.drift.snapshot), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.add(.GET, "/v1/model") { _ in
            let net = try Self.network(service)
            return .json(ModelView(net, drift: service.drift.snapshot))
        }
        router.add(.POST, "/v1/predict", options: options) { request in try measured("/v1/predict") { try predict(request, batch: false) } }
        router.add(.POST, "/v1/predict/batch", options: options) { request in try measured("/v1/predict/batch") { try predict(request, batch: true) } }
    }

    func measured(_ route: String, _ body: () throws -> HTTPResponse) throws -> HTTPResponse {
        let start = ContinuousClock.now
        do {
            let response = try body()
            service.metrics.request(route: route, status: response.status, seconds: InferenceService.ms(ContinuousClock.now - start) / 1000)
            return response
        } catch let error as HTTPError {
            service.metrics.request(route: route, status: error.status, seconds: InferenceService.ms(ContinuousClock.now - start) / 1000)
            throw error
        }
    }

    static func network(_ service: InferenceService) throws -> ServedNetwork {
        guard let net = service.served else {
            throw HTTPError.serviceUnavailable("No network is served yet: the device has no config (and no --model) so far.", retryAfter: 5)
        }
        return net
    }

    func predict(_ request: HTTPRequest, batch: Bool) throws -> HTTPResponse {
        // One read of the reference: the whole request runs on this network, whatever is swapped in meanwhile.
        let net = try Self.network(service)
        let classes = net.classNames.count
        var k = min(Self.defaultK, classes)
        if let raw = request.query["k"] {
            guard let v = Int(raw), (1...classes).contains(v) else {
                throw HTTPError(status: 400, code: "invalid_parameter", detail: "k must be an integer from 1 to \(classes).",
                                errors: [FieldError(field: "k", message: "must be an integer from 1 to \(classes), got \(raw.prefix(40))")])
            }
            k = v
        }
        let x = batch ? try PredictInput.batch(request, net) : try PredictInput.single(request, net)
        let start = ContinuousClock.now
        let outcome = batch ? service.run(x, on: net) : service.predict(x, on: net)
        let total = InferenceService.ms(ContinuousClock.now - start)
        let n = x.shape[0]
        var predictions: [PredictionView] = []
        for i in 0..<n {
            let scores = ClassScores(logits: outcome.logits.data[(i * classes)..<((i + 1) * classes)])
            service.drift.record(entropy: scores.entropy, confidence: scores.confidence)
            predictions.append(PredictionView(scores, k: k, names: net.classNames))
        }
        service.metrics.served(entropies: predictions.map(\.entropy))
        return .json(PredictAnswer(
            predictions: predictions, modelID: net.modelID, configVersion: net.configVersion, combination: net.combination,
            generation: net.generation, splitAfterBlock: outcome.splitAfterBlock, edgeFallback: outcome.fallback != nil,
            fallbackReason: outcome.fallback,
            latencyMs: LatencyView(device: outcome.deviceMs, link: outcome.linkMs, edge: outcome.edgeMs, total: total),
            drift: service.drift.snapshot))
    }
}

/// Request bodies to an (N, C, H, W) tensor of the served network's input shape.
enum PredictInput {
    static func invalid(_ field: String, _ message: String) -> HTTPError { .validation([FieldError(field: field, message: message)]) }

    static func mediaType(_ request: HTTPRequest) -> String {
        (request.headers["Content-Type"] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }

    /// `image/jpeg`, `image/png`, `application/json` `{shape, data}`, or safetensors (`application/octet-stream`,
    /// `application/vnd.safetensors`) with one F32 tensor (`x` when there are several).
    static func single(_ request: HTTPRequest, _ net: ServedNetwork) throws -> Tensor {
        let bytes = try request.bodyBytes()
        switch mediaType(request) {
        case "image/jpeg", "image/png":
            return try image(bytes, field: "body", net)
        case "application/json":
            let body = try request.decodeJSON(TensorBody.self)
            return try tensor(shape: body.shape, data: body.data, field: "", net)
        case "application/octet-stream", "application/vnd.safetensors", "application/safetensors":
            let tensors: [String: SafeTensor]
            do { tensors = try SafeTensors.decode(bytes).tensors } catch {
                throw invalid("body", "not a safetensors file: \(error)")
            }
            let chosen = tensors["x"].map { ("x", $0) } ?? (tensors.count == 1 ? tensors.first.map { ($0.key, $0.value) } : nil)
            guard let chosen else { throw invalid("body", "holds \(tensors.count) tensors and none named x") }
            let (name, t) = chosen
            guard t.dtype == .F32, let values = try? t.floats() else { throw invalid(name, "must be F32, got \(t.dtype.rawValue)") }
            return try tensor(shape: t.shape, data: values, field: name + ".", net)
        default:
            throw HTTPError.badRequest("Send image/jpeg, image/png, application/json {shape, data} or safetensors (application/octet-stream).",
                                       errors: [FieldError(field: "Content-Type", message: "unsupported media type \(mediaType(request).prefix(80))")])
        }
    }

    /// `{"items": [{"image": base64 JPEG/PNG} | {"shape": [...], "data": [...]}, ...]}`, 1–64 items.
    static func batch(_ request: HTTPRequest, _ net: ServedNetwork) throws -> Tensor {
        guard mediaType(request) == "application/json" else {
            throw HTTPError.badRequest("The batch form is application/json {\"items\": [...]}.",
                                       errors: [FieldError(field: "Content-Type", message: "must be application/json")])
        }
        let body = try request.decodeJSON(BatchBody.self)
        guard (1...PredictRoutes.maxBatch).contains(body.items.count) else {
            throw invalid("items", "must hold 1 to \(PredictRoutes.maxBatch) items, got \(body.items.count)")
        }
        var data: [Float] = []
        for (i, item) in body.items.enumerated() {
            let field = "items[\(i)]"
            let t: Tensor
            switch (item.image, item.shape, item.data) {
            case (let image?, nil, nil):
                guard let bytes = Data(base64Encoded: image) else { throw invalid(field + ".image", "is not base64") }
                t = try self.image([UInt8](bytes), field: field + ".image", net)
            case (nil, let shape?, let values?):
                t = try tensor(shape: shape, data: values, field: field + ".", net)
                guard t.shape[0] == 1 else { throw invalid(field + ".shape", "one input per item: [C, H, W] or [1, C, H, W]") }
            default:
                throw invalid(field, "give either image (base64 JPEG/PNG) or shape and data")
            }
            data.append(contentsOf: t.data)
        }
        return Tensor(shape: [body.items.count] + net.inputShape, data: data)
    }

    static func image(_ bytes: [UInt8], field: String, _ net: ServedNetwork) throws -> Tensor {
        let decoded: Image
        do {
            decoded = try ImageDecoder.decode(bytes, source: field, limits: DecodeLimits(maxSamples: 64 << 20, maxFileBytes: PredictRoutes.bodyLimit))
        } catch let error as ImageError {
            throw invalid(field, "\(error.kind.rawValue): \(error.message)")
        }
        do {
            return try net.input.tensor(decoded)
        } catch let error as Preprocessing.Invalid {
            throw invalid(field, error.description)
        }
    }

    /// `shape` is (C, H, W) or (N, C, H, W), N ≤ 64, of the network's input; every value finite.
    static func tensor(shape: [Int], data: [Float], field prefix: String, _ net: ServedNetwork) throws -> Tensor {
        let full: [Int]
        if shape == net.inputShape { full = [1] + shape }
        else if shape.count == 4, Array(shape.dropFirst()) == net.inputShape, (1...PredictRoutes.maxBatch).contains(shape[0]) { full = shape }
        else {
            throw invalid(prefix + "shape", "must be \(net.inputShape) or [N] + \(net.inputShape) with N from 1 to \(PredictRoutes.maxBatch), got \(shape.prefix(8))")
        }
        guard data.count == full.reduce(1, *) else {
            throw invalid(prefix + "data", "has \(data.count) values for shape \(full) (\(full.reduce(1, *)))")
        }
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw invalid(prefix + "data[\(bad)]", "must be finite, got \(data[bad])")
        }
        return Tensor(shape: full, data: data)
    }
}

struct TensorBody: Decodable {
    var shape: [Int]
    var data: [Float]
}

struct BatchBody: Decodable {
    struct Item: Decodable {
        var image: String?
        var shape: [Int]?
        var data: [Float]?
    }
    var items: [Item]
}

struct PredictionView: Encodable {
    struct Top: Encodable {
        var index: Int
        var label: String
        var probability: Float
    }
    var topK: [Top]
    var probabilities: [Float]
    var entropy: Double
    var confidence: Double

    init(_ s: ClassScores, k: Int, names: [String]) {
        topK = s.top(k).map { Top(index: $0, label: names[$0], probability: s.probabilities[$0]) }
        probabilities = s.probabilities
        entropy = s.entropy
        confidence = s.confidence
    }

    enum CodingKeys: String, CodingKey {
        case topK = "top_k"
        case probabilities, entropy, confidence
    }
}

struct LatencyView: Encodable {
    var device: Double
    var link: Double
    var edge: Double
    var total: Double
}

struct PredictAnswer: Encodable {
    var predictions: [PredictionView]
    var modelID: UUID
    var configVersion: Int?
    var combination: [String]
    var generation: Int
    var splitAfterBlock: Int?
    var edgeFallback: Bool
    var fallbackReason: String?
    var latencyMs: LatencyView
    var drift: DriftWindow.Snapshot

    enum CodingKeys: String, CodingKey {
        case predictions, combination, generation, drift
        case modelID = "model_id"
        case configVersion = "config_version"
        case splitAfterBlock = "split_after_block"
        case edgeFallback = "edge_fallback"
        case fallbackReason = "fallback_reason"
        case latencyMs = "latency_ms"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(predictions, forKey: .predictions)
        try c.encode(modelID.uuidString.lowercased(), forKey: .modelID)
        try c.encode(configVersion, forKey: .configVersion)
        try c.encode(combination, forKey: .combination)
        try c.encode(generation, forKey: .generation)
        try c.encode(splitAfterBlock, forKey: .splitAfterBlock)
        try c.encode(edgeFallback, forKey: .edgeFallback)
        try c.encode(fallbackReason, forKey: .fallbackReason)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(drift, forKey: .drift)
    }
}

struct ModelView: Encodable {
    var modelID: String
    var configVersion: Int?
    var combination: [String]
    var generation: Int
    var inputShape: [Int]
    var classNames: [String]
    var preprocessing: Preprocessing
    var splitAfterBlock: Int?
    var drift: DriftWindow.Snapshot

    init(_ net: ServedNetwork, drift: DriftWindow.Snapshot) {
        modelID = net.modelID.uuidString.lowercased()
        configVersion = net.configVersion
        combination = net.combination
        generation = net.generation
        inputShape = net.inputShape
        classNames = net.classNames
        preprocessing = net.input.preprocessing
        splitAfterBlock = net.split?.afterBlock
        self.drift = drift
    }

    enum CodingKeys: String, CodingKey {
        case combination, generation, preprocessing, drift
        case modelID = "model_id"
        case configVersion = "config_version"
        case inputShape = "input_shape"
        case classNames = "class_names"
        case splitAfterBlock = "split_after_block"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelID, forKey: .modelID)
        try c.encode(configVersion, forKey: .configVersion)
        try c.encode(combination, forKey: .combination)
        try c.encode(generation, forKey: .generation)
        try c.encode(inputShape, forKey: .inputShape)
        try c.encode(classNames, forKey: .classNames)
        try c.encode(preprocessing, forKey: .preprocessing)
        try c.encode(splitAfterBlock, forKey: .splitAfterBlock)
        try c.encode(drift, forKey: .drift)
    }
}
