import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer
import ElasticModel
import Learning
import Planner

/// The model registry. A package is verified whole before anything is stored, stored content-addressed by
/// SHA-256 in PostgreSQL (so every replica serves it), and uploading the same bytes again returns the model
/// already stored. A package is the file `fleetadapt model build` writes (see ElasticPackage); its planning space
/// is derived once here and stored beside it, so re-planning never reads the package again.
package struct ModelRoutes: Sendable {
    package let routes: RouteRegistrar
    package let models: ModelStore
    package let clock: WallClock
    package let uploadLimit: Int

    package func register() {
        routes.add(.POST, "/v1/models", access: .admin, options: RouteOptions(bodyLimit: uploadLimit, spoolToDisk: true), upload)
        routes.add(.GET, "/v1/models", access: .viewer, list)
        routes.add(.GET, "/v1/models/{id}", access: .viewer, read)
        routes.add(.GET, "/v1/models/{id}/package", access: .viewerOrDevice, package)
        routes.add(.DELETE, "/v1/models/{id}", access: .admin, delete)
        routes.add(.POST, "/v1/models/{id}/deprecate", access: .admin, deprecate)
    }

    package func upload(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let path = request.bodyFile, let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
            throw HTTPError.validation([FieldError(field: "body", message: "must be an elastic model package (fleetadapt model build)")])
        }
        let bytes = Array(data)
        let package: ElasticPackage
        do { package = try ElasticPackage.decode(bytes, maxBytes: uploadLimit) } catch {
            throw HTTPError(status: 422, code: "invalid_package", detail: "The package was refused: \(error)",
                            errors: [FieldError(field: error.field, message: error.message)])
        }
        let name = request.query["name"] ?? package.manifest.name
        guard (1...128).contains(name.count) else {
            throw HTTPError.badRequest("name must be 1–128 characters.", code: "invalid_parameter", errors: [FieldError(field: "name", message: "must be 1–128 characters")])
        }
        let tags = try Self.tags(request.query["tags"])
        let space = PlanningSpace(package: package.manifest)
        do { try space.validate() } catch {
            throw HTTPError(status: 422, code: "invalid_package", detail: "The package's profiles cannot be planned with: \(error)",
                            errors: [FieldError(field: "manifest", message: "\(error)")])
        }
        let manifest = package.manifest
        switch try models.insert(id: UUID(), name: name, sha256: Secrets.sha256(bytes), content: bytes,
                                          manifestJSON: try WireJSON.string(manifest), planningSpaceJSON: try WireJSON.string(space),
                                          combinationCount: manifest.combinationCount, tags: tags, now: clock.now()) {
        case .created(let row):
            // Publishing moves no device: devices that have a config keep their model until a release moves them
            // (POST /v1/releases). Devices with no config yet are planned by Replanner.catchUp (docs/api.md).
            return try .body(try view(row), status: 201, headers: location(row))
        case .existing(let row): return try .body(try view(row), status: 200, headers: location(row))
        }
    }

    package func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let q = try ListQuery(request)
        let name = request.query["name"]
        if let name, !(1...128).contains(name.count) {
            throw HTTPError.badRequest("name must be 1–128 characters.", code: "invalid_parameter", errors: [FieldError(field: "name", message: "must be 1–128 characters")])
        }
        let (rows, next) = try models.list(limit: q.limit, after: q.after, name: name)
        return try .body(Page(items: try rows.map(view), next: next))
    }

    package func read(_ request: HTTPRequest) throws -> HTTPResponse {
        return try .body(try view(try find(request)))
    }

    /// The package bytes for admins and devices; `ETag` is the SHA-256, so `If-None-Match` saves the download.
    func package(_ request: HTTPRequest) throws -> HTTPResponse {
        let row = try find(request)
        let etag = "\"\(Secrets.hex(row.sha256))\""
        var headers = HTTPHeaders()
        headers.set("ETag", etag)
        if request.ifNoneMatch(etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        guard let content = try models.content(sha256: row.sha256) else { throw HTTPError.notFound("The package bytes are missing.") }
        headers.set("Content-Type", "application/octet-stream")
        return HTTPResponse(status: 200, headers: headers, body: content)
    }

    /// Deletes a model nothing refers to (no domain, so no campaign or job, and no device config): a bad upload is
    /// removed without SQL. A model in use answers 409; deprecate it instead.
    package func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        switch try models.delete(id) {
        case .deleted:
            Log.info("model \(id.uuidString.lowercased()) deleted")
            return .noContent
        case .notFound: throw HTTPError.notFound("No model \(id.uuidString.lowercased()).")
        case .inUse(let domains, let configs):
            let what = domains + configs > 0 ? "\(domains) domains and \(configs) device configs refer to it" : "something refers to it"
            throw HTTPError.conflict("The model is in use (\(what)); deprecate it instead (POST /v1/models/\(id.uuidString.lowercased())/deprecate): a deprecated model is never planned with again.",
                                     code: "model_in_use")
        }
    }

    /// Deprecates a model: no device without a config is planned onto it and no release may name it. Devices that
    /// run it keep it (no device changes model except through a release); its package stays downloadable.
    /// Deprecating again changes nothing.
    package func deprecate(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard let row = try models.deprecate(id, now: clock.now()) else {
            throw HTTPError.notFound("No model \(id.uuidString.lowercased()).")
        }
        Log.info("model \(id.uuidString.lowercased()) deprecated")
        return try .body(try view(row))
    }

    /// `?tags=a,b` of an upload: at most 16 tags of 1–64 letters, digits, `.`, `_` or `-`, duplicates dropped.
    static func tags(_ text: String?) throws -> [String] {
        guard let text else { return [] }
        let tags = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard tags.count <= 16, tags.allSatisfy({ (1...64).contains($0.count) && $0.allSatisfy(allowed.contains) }) else {
            throw HTTPError.badRequest("tags must be a comma-separated list of at most 16 tags of 1–64 letters, digits, '.', '_' or '-'.",
                                       code: "invalid_parameter",
                                       errors: [FieldError(field: "tags", message: "must be at most 16 comma-separated tags of 1–64 letters, digits, '.', '_' or '-'")])
        }
        var seen = Set<String>()
        return tags.filter { seen.insert($0).inserted }
    }

    private func find(_ request: HTTPRequest) throws -> ModelStore.Row {
        let id = try request.uuidParameter("id")
        guard let row = try models.find(id) else { throw HTTPError.notFound("No model \(id.uuidString.lowercased()).") }
        return row
    }

    /// The manifest's summary; rows from before elastic packages (a plain base model) show no blocks.
    private func view(_ row: ModelStore.Row) throws -> ModelView {
        let m = try? WireJSON.decode(PackageManifest.self, from: row.manifestJSON)
        let blocks = (m?.blocks ?? []).enumerated().map { p, block in
            ModelView.Block(name: block.name, kind: block.kind, variants: block.variants.enumerated().map { v, variant in
                let c = variant.profile
                return ModelView.Variant(id: variant.id, sparsity: variant.sparsity, hiddenChannels: variant.hiddenChannels,
                                         skip: variant.skip?.rawValue, flops: c?.flops ?? 0, paramBytes: c?.paramBytes ?? 0,
                                         peakActivationBytes: c?.peakActivationBytes ?? 0, outputBytes: c?.outputBytes ?? 0,
                                         latencyMs: c?.latencyMs ?? 0, accuracyDrop: m?.accuracy.scaledDrop(position: p, variant: v) ?? 0)
            })
        }
        let a = m?.accuracy
        return ModelView(id: row.id, name: row.name, sha256: Secrets.hex(row.sha256), sizeBytes: row.sizeBytes,
                         combinationCount: row.combinationCount, family: m?.architecture.family.rawValue ?? "unknown",
                         adapterKind: m?.adapter.kind ?? "parallel", referenceGFLOPS: m?.reference.gflops ?? 0, blocks: blocks,
                         accuracy: ModelView.Accuracy(baseAccuracy: a?.baseAccuracy ?? 0,
                                                      meanAbsError: a?.meanAbsError ?? 0, maxAbsError: a?.maxAbsError ?? 0),
                         createdAt: row.createdAt, deprecatedAt: row.deprecatedAt, version: row.version, tags: row.tags)
    }

    private func location(_ row: ModelStore.Row) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.set("Location", "/v1/models/\(row.id.uuidString.lowercased())")
        return h
    }
}
