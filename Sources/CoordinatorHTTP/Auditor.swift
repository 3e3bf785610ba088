import CoordinatorStore
import Foundation
import HTTPServer

/// Writes the audit log from the one place every route passes through (`RouteRegistrar`): each mutating request
/// once its status is known — an operator's, and a device's (its context, its job results and artifacts, its
/// enrolment) — and each refused credential, with the caller it named when the credential was valid but its role
/// too small. Telemetry routes (`RouteRegistrar.add(telemetry: true)`: heartbeats, metric and drift reports), which only extend
/// a lease or append a measurement every few seconds per device, are not recorded; metrics count them. A failed write
/// is logged and the request's answer stands.
package struct Auditor: Sendable {
    package let store: AuditStore

    package init(store: AuditStore) {
        self.store = store
    }

    func requestDone(_ request: HTTPRequest, method: HTTPMethod, route: String, status: Int, location: String?) {
        guard [HTTPMethod.POST, .PUT, .PATCH, .DELETE].contains(method) else { return }
        let actor = Self.actor(request.authorization)
        let resource = request.pathParameters["id"] ?? location.flatMap { $0.split(separator: "/").last.map(String.init) }
        append(AuditStore.Record(actorKind: actor.kind, actorID: actor.id, actorName: actor.name, method: method.rawValue, route: route,
                                 resourceID: resource, status: status, requestID: request.requestID, clientAddress: request.clientAddress))
    }

    /// A credential refused with 401 or 403 (before any body was read), on any route; `caller` is who a valid
    /// credential of too small a role named (nil: anonymous).
    func refused(_ request: HTTPRequest, caller: (any Sendable)?, method: HTTPMethod, route: String, status: Int) {
        let actor = Self.actor(caller)
        append(AuditStore.Record(actorKind: actor.kind, actorID: actor.id, actorName: actor.name, method: method.rawValue, route: route,
                                 resourceID: request.pathParameters["id"], status: status, requestID: request.requestID,
                                 clientAddress: request.clientAddress))
    }

    private func append(_ record: AuditStore.Record) {
        do { try store.append(record) } catch {
            Log.error("audit log write failed request_id=\(record.requestID): \(error)")
        }
    }

    static func actor(_ authorization: (any Sendable)?) -> (kind: String, id: String?, name: String?) {
        if let key = authorization as? KeyHolder {
            guard let id = key.id else { return ("admin_key", nil, key.name) }
            return ("api_key", id.uuidString.lowercased(), key.name)
        }
        if let device = authorization as? DeviceIdentity { return ("device", device.id.uuidString.lowercased(), nil) }
        if let token = authorization as? EnrolmentCredential { return ("enrolment_token", token.id.uuidString.lowercased(), nil) }
        return ("anonymous", nil, nil)
    }
}
