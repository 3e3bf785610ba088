import Foundation

/// `POST /v1/agent/drift`: what the device's drift watch measured over its last served (and spooled) predictions,
/// against the baseline it took on its local data right after its last adaptation. The agent sends one at most
/// every `--drift-report-interval` seconds, and only when the window changed.
public struct DriftReport: Codable, Sendable, Equatable {
    /// Predictions in the window now (0 before any was served since the baseline).
    public var windowSize: Int
    /// Mean entropy (nats) and mean top-1 confidence of the window; absent when the window is empty.
    public var windowEntropy: Double?
    public var windowConfidence: Double?
    /// The same means on the local data right after the last adaptation; absent before the agent has one.
    public var baselineEntropy: Double?
    public var baselineConfidence: Double?
    /// `window_entropy − baseline_entropy`; absent unless both are given.
    public var entropyRise: Double?
    /// `baseline_confidence − window_confidence`; absent unless both are given.
    public var confidenceDrop: Double?
    /// The config version the device serves (absent when it serves a local package without a config).
    public var configVersion: Int?

    public init(windowSize: Int, windowEntropy: Double? = nil, windowConfidence: Double? = nil, baselineEntropy: Double? = nil,
                baselineConfidence: Double? = nil, entropyRise: Double? = nil, confidenceDrop: Double? = nil, configVersion: Int? = nil) {
        self.windowSize = windowSize
        self.windowEntropy = windowEntropy
        self.windowConfidence = windowConfidence
        self.baselineEntropy = baselineEntropy
        self.baselineConfidence = baselineConfidence
        self.entropyRise = entropyRise
        self.confidenceDrop = confidenceDrop
        self.configVersion = configVersion
    }

    enum CodingKeys: String, CodingKey {
        case windowSize = "window_size"
        case windowEntropy = "window_entropy"
        case windowConfidence = "window_confidence"
        case baselineEntropy = "baseline_entropy"
        case baselineConfidence = "baseline_confidence"
        case entropyRise = "entropy_rise"
        case confidenceDrop = "confidence_drop"
        case configVersion = "config_version"
    }

    /// Largest mean entropy accepted (nats): ln of a billion classes is under 21.
    public static let maxEntropy = 50.0
    public static let maxWindow = 1_000_000

    /// Every number finite and in range, and each difference equal to its two terms (so a report cannot claim a
    /// rise its own means do not show).
    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.number(Double(windowSize), "window_size", min: 0, max: Double(Self.maxWindow))
        v.number(windowEntropy, "window_entropy", min: 0, max: Self.maxEntropy, required: false)
        v.number(windowConfidence, "window_confidence", min: 0, max: 1, required: false)
        v.number(baselineEntropy, "baseline_entropy", min: 0, max: Self.maxEntropy, required: false)
        v.number(baselineConfidence, "baseline_confidence", min: 0, max: 1, required: false)
        v.number(entropyRise, "entropy_rise", min: -Self.maxEntropy, max: Self.maxEntropy, required: false)
        v.number(confidenceDrop, "confidence_drop", min: -1, max: 1, required: false)
        if let version = configVersion { v.number(Double(version), "config_version", min: 0, max: 2_000_000_000) }
        if windowSize == 0, windowEntropy != nil || windowConfidence != nil {
            v.fail("window_size", "must be positive when window_entropy or window_confidence is given")
        }
        if windowSize > 0 {
            if windowEntropy == nil { v.fail("window_entropy", "is required when window_size is positive") }
            if windowConfidence == nil { v.fail("window_confidence", "is required when window_size is positive") }
        }
        Self.difference(entropyRise, "entropy_rise", of: windowEntropy, minus: baselineEntropy, terms: "window_entropy − baseline_entropy", into: &v)
        Self.difference(confidenceDrop, "confidence_drop", of: baselineConfidence, minus: windowConfidence,
                        terms: "baseline_confidence − window_confidence", into: &v)
        return v.issues
    }

    static func difference(_ value: Double?, _ field: String, of a: Double?, minus b: Double?, terms: String, into v: inout Validator) {
        guard let value, value.isFinite else { return }
        guard let a, let b else { return v.fail(field, "needs both terms of \(terms)") }
        guard a.isFinite, b.isFinite else { return }
        if abs(value - (a - b)) > 1e-6 { v.fail(field, "must equal \(terms)") }
    }
}

/// How the coordinator judges a device from its last report: `drifting` when the window holds at least
/// `minWindow` predictions and its entropy rose by `entropyRise` nats or its confidence dropped by
/// `confidenceDrop`; otherwise `ok`. Triggers set their own thresholds; this is what the device read and the
/// fleet's counts show.
public enum DriftPolicy {
    public static let entropyRise = 0.2
    public static let confidenceDrop = 0.1
    public static let minWindow = 32

    public static func state(of report: DriftReport) -> DeviceDrift.State {
        guard report.windowSize >= minWindow else { return .ok }
        if let rise = report.entropyRise, rise >= entropyRise { return .drifting }
        if let drop = report.confidenceDrop, drop >= confidenceDrop { return .drifting }
        return .ok
    }
}

/// A device's drift as the coordinator keeps it (`drift` on `GET /v1/devices/{id}`, and the answer to a report).
public struct DeviceDrift: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case ok, drifting
    }

    public var state: State
    /// When the device entered this state (the first report that showed it).
    public var since: Date
    /// When the last report arrived, and what it said.
    public var reportedAt: Date
    public var report: DriftReport

    public init(state: State, since: Date, reportedAt: Date, report: DriftReport) {
        self.state = state
        self.since = since
        self.reportedAt = reportedAt
        self.report = report
    }

    enum CodingKeys: String, CodingKey {
        case state, since, report
        case reportedAt = "reported_at"
    }
}
