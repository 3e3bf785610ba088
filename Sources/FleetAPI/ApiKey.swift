import Foundation

/// What an API key may do: a viewer reads; an operator also changes devices, domains, campaigns, releases and
/// triggers; an admin also manages keys and models and deletes. Each role includes the ones before it.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case viewer
    case `operator`
    case admin

    public static func < (a: Role, b: Role) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Body of `POST /v1/api-keys`. Fields are optional here so that a missing one is a 422 naming it, not a 400.
public struct ApiKeyRequest: Codable, Sendable, Equatable {
    public var name: String?
    public var role: String?
    public var expiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, role
        case expiresAt = "expires_at"
    }

    public init(name: String?, role: String?, expiresAt: Date? = nil) {
        self.name = name
        self.role = role
        self.expiresAt = expiresAt
    }

    public static let maxNameLength = 128

    /// `now` is the caller's clock: an expiry already past is refused.
    public func validate(now: Date) -> [ValidationIssue] {
        var v = Validator()
        v.text(name, "name", maxLength: Self.maxNameLength)
        if let role {
            if Role(rawValue: role) == nil { v.fail("role", "must be one of: viewer, operator, admin") }
        } else {
            v.fail("role", "is required")
        }
        if let expiresAt, expiresAt <= now { v.fail("expires_at", "must be in the future") }
        return v.issues
    }
}

/// An API key as lists show it: never its secret.
public struct ApiKeyView: Codable, Sendable, Equatable {
    public var id: UUID
    public var name: String
    public var role: Role
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, role
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }

    public init(id: UUID, name: String, role: Role, createdAt: Date, expiresAt: Date?, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// Answer of `POST /v1/api-keys`: the key's secret (`token`), shown only this once.
public struct ApiKeyCreated: Codable, Sendable, Equatable {
    public var apiKey: ApiKeyView
    public var token: String

    enum CodingKeys: String, CodingKey {
        case apiKey = "api_key"
        case token
    }

    public init(apiKey: ApiKeyView, token: String) {
        self.apiKey = apiKey
        self.token = token
    }
}

/// Body of `POST /v1/enrolment-tokens`.
public struct EnrolmentTokenRequest: Codable, Sendable, Equatable {
    public var labels: [String: String]?
    public var expiresAt: Date?
    public var maxUses: Int?

    enum CodingKeys: String, CodingKey {
        case labels
        case expiresAt = "expires_at"
        case maxUses = "max_uses"
    }

    public init(labels: [String: String]?, expiresAt: Date?, maxUses: Int? = nil) {
        self.labels = labels
        self.expiresAt = expiresAt
        self.maxUses = maxUses
    }

    public static let maxUsesLimit = 1_000_000

    public func validate(now: Date) -> [ValidationIssue] {
        var v = Validator()
        Labels.validate(labels, into: &v)
        if let expiresAt {
            if expiresAt <= now { v.fail("expires_at", "must be in the future") }
        } else {
            v.fail("expires_at", "is required")
        }
        if let maxUses, !(1...Self.maxUsesLimit).contains(maxUses) { v.fail("max_uses", "must be from 1 to \(Self.maxUsesLimit)") }
        return v.issues
    }
}

/// An enrolment token as lists show it: never its secret.
public struct EnrolmentTokenView: Codable, Sendable, Equatable {
    public var id: UUID
    public var labels: [String: String]
    public var expiresAt: Date
    public var maxUses: Int?
    public var uses: Int
    public var createdAt: Date
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, labels, uses
        case expiresAt = "expires_at"
        case maxUses = "max_uses"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
    }

    public init(id: UUID, labels: [String: String], expiresAt: Date, maxUses: Int?, uses: Int, createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.labels = labels
        self.expiresAt = expiresAt
        self.maxUses = maxUses
        self.uses = uses
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// Answer of `POST /v1/enrolment-tokens`: the token's secret, shown only this once.
public struct EnrolmentTokenCreated: Codable, Sendable, Equatable {
    public var enrolmentToken: EnrolmentTokenView
    public var token: String

    enum CodingKeys: String, CodingKey {
        case enrolmentToken = "enrolment_token"
        case token
    }

    public init(enrolmentToken: EnrolmentTokenView, token: String) {
        self.enrolmentToken = enrolmentToken
        self.token = token
    }
}

/// Answer of `POST /v1/devices/{id}/token`: the device's new token (the old one no longer works).
public struct DeviceToken: Codable, Sendable, Equatable {
    public var token: String

    public init(token: String) {
        self.token = token
    }
}

/// One row of the audit log.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: Int64
    public var at: Date
    public var actorKind: String
    public var actorID: String?
    public var actorName: String?
    public var method: String
    public var route: String
    public var resourceID: String?
    public var status: Int
    public var requestID: String
    public var clientAddress: String?

    enum CodingKeys: String, CodingKey {
        case id, at, method, route, status
        case actorKind = "actor_kind"
        case actorID = "actor_id"
        case actorName = "actor_name"
        case resourceID = "resource_id"
        case requestID = "request_id"
        case clientAddress = "client_address"
    }

    public init(id: Int64, at: Date, actorKind: String, actorID: String?, actorName: String?, method: String, route: String,
                resourceID: String?, status: Int, requestID: String, clientAddress: String?) {
        self.id = id
        self.at = at
        self.actorKind = actorKind
        self.actorID = actorID
        self.actorName = actorName
        self.method = method
        self.route = route
        self.resourceID = resourceID
        self.status = status
        self.requestID = requestID
        self.clientAddress = clientAddress
    }
}
