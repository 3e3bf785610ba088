/// Body of `POST /v1/devices`: everything the planner needs to give the device a first config.
public struct DeviceRegistration: Codable, Sendable, Equatable {
    public var name: String
    public var hardware: Hardware
    public var constraints: Constraints
    public var context: DeviceContext?
    public var labels: [String: String]?

    public init(name: String, hardware: Hardware, constraints: Constraints,
                context: DeviceContext? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.hardware = hardware
        self.constraints = constraints
        self.context = context
        self.labels = labels
    }

    public static let maxNameLength = 128

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        v.text(name, "name", maxLength: Self.maxNameLength)
        hardware.validate(into: &v)
        constraints.validate(into: &v)
        context?.validate(into: &v)
        Labels.validate(labels, into: &v)
        return v.issues
    }
}

/// Body of `PATCH /v1/devices/{id}`: absent fields stay as they are; `hardware`, `constraints`
/// and `labels` replace the whole object when present (a merge would make "remove a label" unsayable).
public struct DevicePatch: Codable, Sendable, Equatable {
    public var name: String?
    public var hardware: Hardware?
    public var constraints: Constraints?
    public var labels: [String: String]?

    public init(name: String? = nil, hardware: Hardware? = nil, constraints: Constraints? = nil,
                labels: [String: String]? = nil) {
        self.name = name
        self.hardware = hardware
        self.constraints = constraints
        self.labels = labels
    }

    public var isEmpty: Bool { name == nil && hardware == nil && constraints == nil && labels == nil }

    public func validate() -> [ValidationIssue] {
        var v = Validator()
        if isEmpty { v.fail("body", "must change at least one of name, hardware, constraints, labels") }
        if let name { v.text(name, "name", maxLength: DeviceRegistration.maxNameLength) }
        hardware?.validate(into: &v)
        constraints?.validate(into: &v)
        Labels.validate(labels, into: &v)
        return v.issues
    }
}
