import Foundation

/// `GET /v1/fleet/summary`: devices by status and class, campaigns by status, jobs by state, mean gains.
public struct FleetSummary: Codable, Sendable, Equatable {
    public var devicesByStatus: [String: Int]
    public var devicesByClass: [String: Int]
    public var campaignsByStatus: [String: Int]
    public var jobsByState: [String: Int]
    public var meanAccuracyGain: Double?
    public var meanEntropyReduction: Double?
    public var adaptedDevices: Int
    /// Active devices by drift state (`ok`, `drifting`, `unknown` for those that never reported).
    public var devicesByDriftState: [String: Int]?

    public init(devicesByStatus: [String: Int], devicesByClass: [String: Int], campaignsByStatus: [String: Int],
                jobsByState: [String: Int], meanAccuracyGain: Double?, meanEntropyReduction: Double?, adaptedDevices: Int) {
        self.devicesByStatus = devicesByStatus
        self.devicesByClass = devicesByClass
        self.campaignsByStatus = campaignsByStatus
        self.jobsByState = jobsByState
        self.meanAccuracyGain = meanAccuracyGain
        self.meanEntropyReduction = meanEntropyReduction
        self.adaptedDevices = adaptedDevices
    }

    enum CodingKeys: String, CodingKey {
        case devicesByStatus = "devices_by_status"
        case devicesByClass = "devices_by_class"
        case campaignsByStatus = "campaigns_by_status"
        case jobsByState = "jobs_by_state"
        case meanAccuracyGain = "mean_accuracy_gain"
        case meanEntropyReduction = "mean_entropy_reduction"
        case adaptedDevices = "adapted_devices"
        case devicesByDriftState = "devices_by_drift_state"
    }
}
