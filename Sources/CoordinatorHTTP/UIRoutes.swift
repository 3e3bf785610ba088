import BundledResources
import CoordinatorStore
import Foundation
import HTTPServer

/// The web dashboard at `/ui`: static files compiled into the binary (Sources/CoordinatorHTTP/UI, bundled by
/// deploy/tools/bundle_resources.py). They hold no data, so they need no credential; the page signs in with an API
/// key and reads everything through the ordinary API with `Authorization: Bearer`, so each figure it shows is
/// guarded by the role of the route that serves it.
package struct UIRoutes: Sendable {
    package let routes: RouteRegistrar

    /// One servable file: its bytes, media type and strong entity tag (the SHA-256 of the bytes).
    struct Asset: Sendable {
        let body: [UInt8]
        let contentType: String
        let etag: String
    }

    /// Every file by name; only these names are ever served (no file system, so no traversal).
    static let assets: [String: Asset] = {
        var out: [String: Asset] = [:]
        for (name, text) in BundledResources.dashboardFiles {
            guard let type = contentType(name) else { continue }
            let body = Array(text.utf8)
            out[name] = Asset(body: body, contentType: type, etag: "\"\(Secrets.hex(Secrets.sha256(body)).prefix(32))\"")
        }
        return out
    }()

    /// The page's policy: scripts, styles, images and API calls from this origin only, no inline script or style,
    /// no plugins, never framed. The page builds every element with the DOM API and text nodes, so it needs nothing more.
    static let contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        + "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    package func register() {
        routes.add(.GET, "/ui", access: .open) { request in try Self.serve("index.html", request) }
        routes.add(.GET, "/ui/{file}", access: .open) { request in
            try Self.serve(request.pathParameters["file"] ?? "", request)
        }
    }

    /// A file by name, 304 when `If-None-Match` names its tag; a name that tries to leave the folder is a 400,
    /// any other unknown name a 404.
    static func serve(_ name: String, _ request: HTTPRequest) throws -> HTTPResponse {
        if name.contains("/") || name.contains("\\") || name.contains("..") || name.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw HTTPError.badRequest("A dashboard file name is one path segment without '..'.", code: "invalid_parameter",
                                       errors: [FieldError(field: "file", message: "must name a file of the dashboard")])
        }
        guard let asset = assets[name] else { throw HTTPError.notFound("The dashboard has no file '\(name)'.") }
        var headers = securityHeaders
        headers.set("ETag", asset.etag)
        // Revalidate every time (the tag makes that a 304): a new coordinator build must never run an old script.
        headers.set("Cache-Control", "no-cache")
        if request.ifNoneMatch(asset.etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.set("Content-Type", asset.contentType)
        return HTTPResponse(status: 200, headers: headers, body: asset.body)
    }

    static var securityHeaders: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.set("Content-Security-Policy", contentSecurityPolicy)
        headers.set("X-Content-Type-Options", "nosniff")
        headers.set("Referrer-Policy", "no-referrer")
        headers.set("X-Frame-Options", "DENY")
        return headers
    }

    /// The media type of a dashboard file by its extension; files of other kinds are not served.
    static func contentType(_ name: String) -> String? {
        switch name.split(separator: ".").last.map(String.init) ?? "" {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "txt": "text/plain; charset=utf-8"
        default: nil
        }
    }
}
