import FleetAPI
import Foundation

/// The device's calls (`/v1/agent/…`, with the device token). Each returns what the caller acts on; a transport
/// failure that outlasts the retry policy throws `CoordinatorClient.Failure`, an unreadable body a `DecodingError`.
extension CoordinatorClient {
    /// What `GET /v1/agent/jobs/next` answered.
    public enum LeaseAnswer: Sendable {
        /// 200: a job leased to this device.
        case job(LeasedJob)
        /// 204: nothing to do within the wait.
        case noJob
        /// 401, 403, 404: the coordinator does not accept this device.
        case refused(Response)
        /// Anything else.
        case unexpected(Response)
    }

    /// Long-polls for the next job, waiting up to `wait` seconds on the coordinator.
    public func leaseNext(wait: Int, retry: Retry) throws -> LeaseAnswer {
        let r = try send("GET", "/v1/agent/jobs/next?wait=\(wait)", retry: retry)
        switch r.status {
        case 204: return .noJob
        case 200: return .job(try Self.decode(LeasedJob.self, r.body))
        case 401, 403, 404: return .refused(r)
        default: return .unexpected(r)
        }
    }

    /// `PUT /v1/agent/context`; anything but 200 throws.
    public func reportContext(_ context: DeviceContext, retry: Retry = .attempts(8)) throws {
        let r = try send("PUT", "/v1/agent/context", body: try json(context), retry: retry)
        guard r.status == 200 else { throw Failure(description: "context report refused: HTTP \(r.status)") }
    }

    /// `POST /v1/agent/metrics`: numeric metrics observed outside jobs; anything but 2xx throws a `ProblemError`.
    public func reportMetrics(_ report: MetricReport, attempts: Int = 3) throws {
        let r = try send("POST", "/v1/agent/metrics", body: try json(report), attempts: attempts)
        guard (200..<300).contains(r.status) else { throw ProblemError(status: r.status, body: r.body, request: "POST /v1/agent/metrics") }
    }

    /// `POST /v1/agent/drift`: the device's drift window; answers the drift state the coordinator keeps for it.
    /// Anything but 200 throws a `ProblemError`.
    public func reportDrift(_ report: DriftReport, attempts: Int = 2) throws -> DeviceDrift {
        let r = try send("POST", "/v1/agent/drift", body: try json(report), attempts: attempts)
        guard r.status == 200 else { throw ProblemError(status: r.status, body: r.body, request: "POST /v1/agent/drift") }
        return try Self.decode(DeviceDrift.self, r.body)
    }

    /// What a heartbeat learnt about the lease.
    public enum HeartbeatAnswer: Sendable, Equatable {
        case held
        /// 404 or 409: this attempt no longer holds the job.
        case lost
        case unexpected(status: Int)
    }

    /// `POST /v1/agent/jobs/{id}/heartbeat`: renews the lease of `attempt` and reports its progress.
    public func heartbeat(job: UUID, attempt: Int, progress: [String: Double]?, attempts: Int = 2) throws -> HeartbeatAnswer {
        let body = try json(Heartbeat(attempt: attempt, progress: progress))
        let r = try send("POST", "/v1/agent/jobs/\(job.uuidString.lowercased())/heartbeat", body: body, attempts: attempts)
        switch r.status {
        case 200..<300: return .held
        case 404, 409: return .lost
        default: return .unexpected(status: r.status)
        }
    }

    /// What the coordinator made of an uploaded artifact.
    public enum ArtifactAnswer: Sendable, Equatable {
        /// 201.
        case stored
        /// 404 or 409: this attempt no longer holds the job.
        case notHeld(status: Int)
        /// Anything else, with the answer's body (the reason).
        case refused(status: Int, body: String)
    }

    /// `PUT /v1/agent/jobs/{id}/artifact?attempt=n`, with the body's SHA-256 in `Content-SHA256`.
    public func uploadArtifact(job: UUID, attempt: Int, artifact: Data, retry: Retry) throws -> ArtifactAnswer {
        let r = try send("PUT", "/v1/agent/jobs/\(job.uuidString.lowercased())/artifact?attempt=\(attempt)", body: artifact,
                         contentType: "application/octet-stream", headers: ["Content-SHA256": Self.sha256Hex(artifact)], retry: retry)
        switch r.status {
        case 201: return .stored
        case 404, 409: return .notHeld(status: r.status)
        default: return .refused(status: r.status, body: String(decoding: r.body, as: UTF8.self))
        }
    }

    /// What `POST /v1/agent/jobs/{id}/result` answered: its status (any answer ends a delivery) and, when the result
    /// was recorded, the job's state after it — `rejected` when an adapt result failed its campaign's quality gate.
    public struct ResultAnswer: Sendable, Equatable {
        public var status: Int
        public var state: JobState?

        public init(status: Int, state: JobState?) {
            self.status = status
            self.state = state
        }
    }

    /// `POST /v1/agent/jobs/{id}/result`.
    public func reportResult(job: UUID, result: JobResult, retry: Retry) throws -> ResultAnswer {
        struct Recorded: Decodable { var state: JobState }
        let r = try send("POST", "/v1/agent/jobs/\(job.uuidString.lowercased())/result", body: try json(result), retry: retry)
        return ResultAnswer(status: r.status, state: r.status == 200 ? (try? Self.decode(Recorded.self, r.body))?.state : nil)
    }

    /// What `GET /v1/agent/config` answered.
    public enum ConfigAnswer: Sendable, Equatable {
        case config(DeviceConfigView)
        /// 404 `no_config`: the device exists but has no config yet.
        case noConfig
        /// 401, 403, or 404 for another reason (the device is decommissioned).
        case refused(status: Int)
        case unexpected(status: Int)
    }

    /// The device's current config; a 200 whose body does not decode throws a `DecodingError`.
    public func config(attempts: Int = 3) throws -> ConfigAnswer {
        let r = try send("GET", "/v1/agent/config", attempts: attempts)
        switch r.status {
        case 200: return .config(try Self.decode(DeviceConfigView.self, r.body))
        case 404 where ProblemError(status: r.status, body: r.body, request: "").code == "no_config": return .noConfig
        case 401, 403, 404: return .refused(status: r.status)
        default: return .unexpected(status: r.status)
        }
    }

    /// What `GET /v1/agent/domains/{id}/adapter` answered.
    public enum AdapterAnswer: Sendable, Equatable {
        /// The aggregated adapters (safetensors), their SHA-256 checked against the ETag.
        case adapter(Data)
        /// No aggregate to hand out (the status says why).
        case missing(status: Int)
        /// The body's SHA-256 differs from the ETag.
        case corrupt
    }

    /// The domain's aggregated adapters.
    public func domainAdapter(_ domain: UUID, attempts: Int = 8) throws -> AdapterAnswer {
        let r = try send("GET", "/v1/agent/domains/\(domain.uuidString.lowercased())/adapter", attempts: attempts)
        guard r.status == 200 else { return .missing(status: r.status) }
        guard r.headers["etag"] == "\"\(Self.sha256Hex(r.body))\"" else { return .corrupt }
        return .adapter(r.body)
    }

    /// The adapter file of the device's `restore` job `job` (`GET /v1/agent/jobs/{id}/adapters`), checked against
    /// its ETag; the job document's digest is the caller's to check.
    public func restoreAdapters(job: UUID, attempts: Int = 8) throws -> AdapterAnswer {
        let r = try send("GET", "/v1/agent/jobs/\(job.uuidString.lowercased())/adapters", attempts: attempts)
        guard r.status == 200 else { return .missing(status: r.status) }
        guard r.headers["etag"] == "\"\(Self.sha256Hex(r.body))\"" else { return .corrupt }
        return .adapter(r.body)
    }

    /// What `POST /v1/agent/jobs/{id}/plan` answered.
    public enum ReleasePlanAnswer: Sendable, Equatable {
        /// 200: the decision the release would move the device to.
        case decision(PlanDecision)
        /// 409 `not_a_release`: a plain `profile` job, which moves no model.
        case notARelease
        /// Anything else (the attempt no longer holds the job, figures refused, …), with the problem's text.
        case refused(status: Int, body: String)
    }

    /// The combination a release's `profile` job would move this device to, given what it measured.
    public func releasePlan(job: UUID, attempt: Int, variantLatenciesMs: [[Double]], attempts: Int = 8) throws -> ReleasePlanAnswer {
        let body = try json(ReleasePlanRequest(attempt: attempt, variantLatenciesMs: variantLatenciesMs))
        let r = try send("POST", "/v1/agent/jobs/\(job.uuidString.lowercased())/plan", body: body, attempts: attempts)
        switch r.status {
        case 200: return .decision(try Self.decode(PlanDecision.self, r.body))
        case 409 where ProblemError(status: r.status, body: r.body, request: "").code == "not_a_release": return .notARelease
        default: return .refused(status: r.status, body: String(decoding: r.body.prefix(2048), as: UTF8.self))
        }
    }

    /// What `GET /v1/models/{id}/package` answered.
    public enum PackageAnswer: Sendable, Equatable {
        /// 304: the package whose digest was offered in If-None-Match is current.
        case notModified
        /// 200: the package and its ETag (which should quote its SHA-256; `PackageCache` checks it).
        case package(Data, etag: String?)
        case failed(status: Int)
    }

    /// Model `id`'s package, revalidated against `ifNoneMatch` (a SHA-256 the caller holds) when given.
    public func package(id: UUID, ifNoneMatch digest: String? = nil, attempts: Int = 8) throws -> PackageAnswer {
        let headers = digest.map { ["If-None-Match": "\"\($0)\""] } ?? [:]
        let r = try send("GET", "/v1/models/\(id.uuidString.lowercased())/package", headers: headers, attempts: attempts)
        switch r.status {
        case 304: return .notModified
        case 200: return .package(r.body, etag: r.headers["etag"])
        default: return .failed(status: r.status)
        }
    }
}

extension CoordinatorClient {
    /// `POST /v1/agent/enrol` with this client's token being an enrolment token: the device is created with the
    /// token's labels and its own token comes back (once). Retried until the coordinator answers (`retry`); a
    /// refusal (an expired, revoked or used-up token, a bad body) throws a `ProblemError`.
    public func enrol(_ registration: DeviceRegistration, retry: Retry) throws -> DeviceCreated {
        let r = try send("POST", "/v1/agent/enrol", body: try json(registration), retry: retry)
        guard r.status == 201 else { throw ProblemError(status: r.status, body: r.body, request: "POST /v1/agent/enrol") }
        return try Self.decode(DeviceCreated.self, r.body)
    }
}
