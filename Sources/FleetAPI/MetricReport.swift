import Foundation

/// `POST /v1/agent/metrics`: a named set of numbers a device measured.
public struct MetricReport: Codable, Sendable, Equatable {
    public var kind: String
    public var values: [String: Double]

    public init(kind: String, values: [String: Double]) {
        self.kind = kind
        self.values = values
    }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.text(kind, "kind", maxLength: 64)
        if values.isEmpty { v.fail("values", "must have at least one entry") }
        if values.count > 64 { v.fail("values", "must have at most 64 entries") }
        for (k, x) in values.sorted(by: { $0.key < $1.key }) {
            if !Labels.isValidKey(k) { v.fail("values.\(k)", "name must be 1–63 characters of letters, digits, '.', '_', '/' or '-'") }
            if !x.isFinite { v.fail("values.\(k)", "must be a finite number") }
        }
        return v.issues
    }
}

/// One point of a device's metric time series.
public struct MetricPoint: Codable, Sendable, Equatable {
    public var id: Int
    public var kind: String
    public var jobID: UUID?
    public var values: [String: Double]
    public var recordedAt: Date

    public init(id: Int, kind: String, jobID: UUID?, values: [String: Double], recordedAt: Date) {
        self.id = id
        self.kind = kind
        self.jobID = jobID
        self.values = values
        self.recordedAt = recordedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, values
        case jobID = "job_id"
        case recordedAt = "recorded_at"
    }
}
