import Foundation

/// A registered device as the API shows it. `version` backs the `ETag`.
public struct Device: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        case active
        case decommissioned
    }

    public var id: UUID
    public var name: String
    public var status: Status
    public var hardware: Hardware
    public var constraints: Constraints
    public var context: ReportedContext?
    public var labels: [String: String]
    public var version: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var lastSeenAt: Date?
    /// The device's drift state from its last report (`GET /v1/devices/{id}` only; absent before any report).
    public var drift: DeviceDrift?

    public init(id: UUID, name: String, status: Status, hardware: Hardware, constraints: Constraints,
                context: ReportedContext?, labels: [String: String], version: Int,
                createdAt: Date, updatedAt: Date, lastSeenAt: Date?) {
        self.id = id
        self.name = name
        self.status = status
        self.hardware = hardware
        self.constraints = constraints
        self.context = context
        self.labels = labels
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastSeenAt = lastSeenAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, status, hardware, constraints, context, labels, version, drift
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case lastSeenAt = "last_seen_at"
    }

    /// Strong entity tag for `ETag` / `If-Match`.
    public var etag: String { "\"v\(version)\"" }
}

/// A context report with the time the coordinator stored it.
public struct ReportedContext: Codable, Sendable, Equatable {
    public var context: DeviceContext
    public var reportedAt: Date

    public init(context: DeviceContext, reportedAt: Date) {
        self.context = context
        self.reportedAt = reportedAt
    }

    enum CodingKeys: String, CodingKey {
        case reportedAt = "reported_at"
    }

    public init(from decoder: any Decoder) throws {
        context = try DeviceContext(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reportedAt = try c.decode(Date.self, forKey: .reportedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        try context.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(reportedAt, forKey: .reportedAt)
    }
}

/// Answer of a registration: the device and its bearer token, shown only this once.
public struct DeviceCreated: Codable, Sendable, Equatable {
    public var device: Device
    public var token: String

    public init(device: Device, token: String) {
        self.device = device
        self.token = token
    }
}

/// One page of a cursor-paginated list; `next` is the `after` value for the following page.
public struct Page<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var items: [Item]
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}
