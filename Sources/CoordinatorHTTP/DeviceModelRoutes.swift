import CoordinatorDomain
import CoordinatorStore
import Foundation
import HTTPServer
import ONNXExport

/// A device's current subnet as one ONNX file, for admins (`/v1/devices/{id}/model.onnx`) and for the device
/// itself (`/v1/agent/model.onnx`). `?part=device|edge` gives one side of a split config.
package struct DeviceModelRoutes: Sendable {
    package let routes: RouteRegistrar
    package let devices: DeviceStore
    package let export: DeviceModelExport

    package func register() {
        routes.add(.GET, "/v1/devices/{id}/model.onnx", access: .admin, deviceModel)
        routes.add(.GET, "/v1/agent/model.onnx", access: .device, agentModel)
    }

    package func deviceModel(_ request: HTTPRequest) throws -> HTTPResponse {
        let id = try request.uuidParameter("id")
        guard try devices.find(id) != nil else { throw HTTPError.notFound("No device \(id.uuidString.lowercased()).") }
        return try answer(request, device: id)
    }

    package func agentModel(_ request: HTTPRequest) throws -> HTTPResponse {
        try answer(request, device: try routes.auth.requireDevice(request).id)
    }

    private func answer(_ request: HTTPRequest, device: UUID) throws -> HTTPResponse {
        var part = ExportPart.whole
        if let text = request.query["part"] {
            guard let p = ExportPart(rawValue: text) else {
                throw HTTPError.badRequest("part must be whole, device or edge.", code: "invalid_parameter",
                                           errors: [FieldError(field: "part", message: "must be one of whole, device, edge")])
            }
            part = p
        }
        do {
            let description = try export.describe(device: device, part: part)
            var headers = HTTPHeaders()
            headers.set("ETag", description.etag)
            if request.ifNoneMatch(description.etag) { return HTTPResponse(status: 304, headers: headers) }
            let bytes = try export.render(description)
            headers.set("Content-Type", "application/octet-stream")
            headers.set("Content-Disposition", "attachment; filename=\"\(part == .whole ? "model" : "model-\(part.rawValue)").onnx\"")
            return HTTPResponse(status: 200, headers: headers, body: bytes)
        } catch let failure as DeviceModelExport.Failure {
            throw HTTPError.modelExport(failure, device: device)
        }
    }
}

extension HTTPError {
    package static func modelExport(_ failure: DeviceModelExport.Failure, device: UUID) -> HTTPError {
        let id = device.uuidString.lowercased()
        switch failure {
        case .noConfig:
            return HTTPError(status: 404, code: "no_config",
                             detail: "Device \(id) has no config yet: no elastic model is published, or it has not been planned.")
        case .notSplit:
            return HTTPError(status: 409, code: "not_split", detail: "Device \(id)'s config runs the whole network on the device; ask for part=whole.",
                             errors: [FieldError(field: "part", message: "the config has no partition")])
        case .adaptersUnavailable(let why):
            return HTTPError(status: 409, code: "adapters_unavailable", detail: "Device \(id)'s model cannot be rendered: \(why).")
        case .unrenderable(let why):
            return HTTPError(status: 409, code: "model_unrenderable", detail: "Device \(id)'s model cannot be rendered: \(why).")
        }
    }
}
