import FleetAPI
import Foundation
import HTTPServer
import Learning

/// The model registry. A package is verified whole before anything is stored, stored content-addressed by
/// SHA-256 in PostgreSQL (so every replica serves it), and uploading the same bytes again returns the model
/// already stored. Until elastic packages exist, a package is a base model file (safetensors + architecture).
struct ModelRoutes {
    let services: Services
    static let uploadLimit = 256 << 20

    func register(on router: Router) {
        services.route(router, .POST, "/v1/models", options: RouteOptions(bodyLimit: Self.uploadLimit, spoolToDisk: true), upload)
        services.route(router, .GET, "/v1/models", list)
        services.route(router, .GET, "/v1/models/{id}", read)
        services.route(router, .GET, "/v1/models/{id}/package", package)
    }

    func upload(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        guard let path = request.bodyFile, let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
            throw HTTPError.validation([FieldError(field: "body", message: "must be a model package")])
        }
        let bytes = Array(data)
        let manifest: ModelView.Manifest
        do {
            let (tensors, metadata) = try SafeTensors.decode(bytes)
            let (model, _) = try BaseModelFile.read(tensors: tensors, metadata: metadata)
            manifest = ModelView.Manifest(metadata: metadata,
                                          tensors: tensors.keys.sorted().map { ModelView.TensorInfo(name: $0, shape: tensors[$0]!.shape) },
                                          parameterCount: model.store.values.count)
        } catch {
            throw HTTPError(status: 422, code: "invalid_package", detail: "The package is not a valid model package: \(error)",
                            errors: [FieldError(field: "body", message: "must be a model package (safetensors with architecture metadata)")])
        }
        let name = request.query["name"] ?? manifest.metadata["name"] ?? "model"
        guard (1...128).contains(name.count) else {
            throw HTTPError.badRequest("name must be 1–128 characters.", code: "invalid_parameter", errors: [FieldError(field: "name", message: "must be 1–128 characters")])
        }
        let digest = Secrets.sha256(bytes)
        switch try services.models.insert(id: UUID(), name: name, sha256: digest, content: bytes, manifestJSON: try JSON.string(manifest),
                                          combinationCount: 1, now: services.clock.now()) {
        case .created(let row): return try .body(try view(row), status: 201, headers: location(row))
        case .existing(let row): return try .body(try view(row), status: 200, headers: location(row))
        }
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        let q = try ListQuery(request)
        let (rows, next) = try services.models.list(limit: q.limit, after: q.after)
        return try .body(Page(items: try rows.map(view), next: next))
    }

    func read(_ request: HTTPRequest) throws -> HTTPResponse {
        try services.auth.requireAdmin(request)
        return try .body(try view(try find(request)))
    }

    /// The package bytes for admins and devices; `ETag` is the SHA-256, so `If-None-Match` saves the download.
    func package(_ request: HTTPRequest) throws -> HTTPResponse {
        if let token = request.bearerToken, services.auth.adminKey.matches(token) {} else { _ = try services.auth.requireDevice(request) }
        let row = try find(request)
        let etag = "\"\(Secrets.hex(row.sha256))\""
        var headers = HTTPHeaders()
        headers.set("ETag", etag)
        if let inm = request.headers["If-None-Match"], inm.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag || $0 == "*" }) {
            return HTTPResponse(status: 304, headers: headers)
        }
        guard let content = try services.models.content(sha256: row.sha256) else { throw HTTPError.notFound("The package bytes are missing.") }
        headers.set("Content-Type", "application/octet-stream")
        return HTTPResponse(status: 200, headers: headers, body: content)
    }

    private func find(_ request: HTTPRequest) throws -> ModelStore.Row {
        let id = try request.uuidParameter("id")
        guard let row = try services.models.find(id) else { throw HTTPError.notFound("No model \(id.uuidString.lowercased()).") }
        return row
    }

    private func view(_ row: ModelStore.Row) throws -> ModelView {
        ModelView(id: row.id, name: row.name, sha256: Secrets.hex(row.sha256), sizeBytes: row.sizeBytes, combinationCount: row.combinationCount,
                  manifest: try JSON.decode(ModelView.Manifest.self, from: row.manifestJSON), createdAt: row.createdAt)
    }

    private func location(_ row: ModelStore.Row) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.set("Location", "/v1/models/\(row.id.uuidString.lowercased())")
        return h
    }
}
