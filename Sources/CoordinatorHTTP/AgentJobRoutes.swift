import CoordinatorDomain
import CoordinatorStore
import FleetAPI
import Foundation
import HTTPServer

/// The job protocol of the agent: long-poll for a job, heartbeat, upload adapters, report the result.
/// Every route acts only on the calling device's own jobs; another device's job is a 404.
package struct AgentJobRoutes: Sendable {
    package let routes: RouteRegistrar
    package let jobs: JobStore
    package let upload: ArtifactUpload
    package let metricsStore: MetricsStore
    package let waiters: JobWaiters
    package let policy: ArtifactPolicy
    package let completion: JobCompletion
    package let aggregator: AdapterAggregator
    package let restore: RestoreDownload
    package let replanner: Replanner
    package let clock: WallClock

    package static let maxWaitSeconds = 60
    package static let artifactLimit = 16 << 20

    package func register() {
        let (auth, jobs, waiters) = (routes.auth, self.jobs, self.waiters)
        // HEAD would lease a job and throw the answer away: the long-poll serves GET only (HEAD is 405).
        routes.router.addLongPoll(.GET, "/v1/agent/jobs/next",
                                  options: RouteOptions(authorize: routes.authorizer(.device, method: .GET, pattern: "/v1/agent/jobs/next"), allowsHead: false)) { request, poll in
            try mapDatabaseErrors(request.requestID) { try Self.next(auth: auth, jobs: jobs, waiters: waiters, request, poll) }
        }
        routes.add(.POST, "/v1/agent/jobs/{id}/heartbeat", access: .device, telemetry: true, heartbeat)
        routes.add(.PUT, "/v1/agent/jobs/{id}/artifact", access: .device, options: RouteOptions(bodyLimit: Self.artifactLimit), artifact)
        routes.add(.POST, "/v1/agent/jobs/{id}/result", access: .device, result)
        routes.add(.POST, "/v1/agent/metrics", access: .device, telemetry: true, metrics)
        routes.add(.GET, "/v1/agent/domains/{id}/adapter", access: .device, domainAdapter)
        routes.add(.GET, "/v1/agent/jobs/{id}/adapters", access: .device, restoreAdapters)
        routes.add(.POST, "/v1/agent/jobs/{id}/plan", access: .device, releasePlan)
    }

    package static func next(auth: Authenticator, jobs: JobStore, waiters: JobWaiters, _ request: HTTPRequest, _ poll: LongPoll) throws -> HTTPResponse? {
        let device = try auth.requireDevice(request)
        var wait = 30
        if let text = request.query["wait"] {
            guard let w = Int(text), (0...maxWaitSeconds).contains(w) else {
                throw HTTPError.badRequest("wait must be an integer from 0 to \(maxWaitSeconds) seconds.", code: "invalid_parameter",
                                           errors: [FieldError(field: "wait", message: "must be an integer from 0 to \(maxWaitSeconds)")])
            }
            wait = w
        }
        if let job = try jobs.leaseNext(device: device.id) {
            return try .body(job)
        }
        let idle: @Sendable () -> HTTPResponse = {
            var headers = HTTPHeaders()
            headers.set("Retry-After", "1")
            return HTTPResponse(status: 204, headers: headers)
        }
        if wait == 0 { return idle() }
        poll.wait(timeout: .seconds(wait), onTimeout: idle)
        waiters.add(device: device.id, poll: LongPollJobWaiter(poll: poll))
        // A job may have appeared between the lease attempt above and the registration.
        waiters.wake(device: device.id)
        return nil
    }

    package func heartbeat(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let job = try request.uuidParameter("id")
        let beat = try request.decodeValidated(Heartbeat.self) { $0.validate() }
        switch try jobs.heartbeat(job: job, device: device.id, attempt: beat.attempt, progress: beat.progress) {
        case .ok(let expires):
            return try .body(["lease_expires_at": WireTimestamp.format(expires)])
        case .notFound:
            throw HTTPError.notFound("No job \(job.uuidString.lowercased()) for this device.")
        case .leaseLost:
            throw HTTPError.conflict("This attempt no longer holds the job (its lease expired or another attempt took it); stop working on it.",
                                     code: "lease_lost")
        }
    }

    /// Adapter weights of one attempt: a safetensors file whose SHA-256 the agent states in `Content-SHA256`.
    package func artifact(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let job = try request.uuidParameter("id")
        guard let attemptText = request.query["attempt"], let attempt = Int(attemptText), attempt >= 1 else {
            throw HTTPError.badRequest("The attempt that produced the artifact is required as ?attempt=N.", code: "invalid_parameter",
                                       errors: [FieldError(field: "attempt", message: "must be a positive integer")])
        }
        guard let stated = request.headers["Content-SHA256"]?.lowercased(), let statedDigest = Secrets.fromHex(stated),
              statedDigest.count == 32 else {
            throw HTTPError.badRequest("Content-SHA256 must be the hex SHA-256 of the body.", code: "invalid_header",
                                       errors: [FieldError(field: "Content-SHA256", message: "must be 64 hex characters")])
        }
        let body = request.body
        let outcome: ArtifactUpload.Outcome
        do {
            outcome = try upload.receive(job: job, device: device.id, attempt: attempt, statedDigest: statedDigest, body: body, now: clock.now())
        } catch let refusal as ArtifactUpload.Refusal {
            throw HTTPError.upload(refusal)
        }
        switch outcome {
        case .stored:
            break
        case .staleAttempt:
            throw HTTPError.conflict("Attempt \(attempt) does not hold this job; the artifact is refused.", code: "stale_attempt")
        case .notFound:
            throw HTTPError.notFound("No job \(job.uuidString.lowercased()) for this device.")
        }
        return try .body(["sha256": stated, "size": String(body.count)], status: 201)
    }

    /// Records an attempt's result and finishes what follows it (`JobCompletion`); the answer is the job's state.
    /// A succeeded `adapt` attempt must have uploaded its artifact first.
    package func result(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let job = try request.uuidParameter("id")
        let result = try request.decodeValidated(JobResult.self) { $0.validate() }
        if result.outcome == .succeeded {
            do { try policy.requireArtifact(job: job, device: device.id, attempt: result.attempt) } catch let refusal as ArtifactRefusal {
                throw HTTPError.artifact(refusal)
            }
        }
        switch try completion.report(job: job, device: device.id, result: result) {
        case .notFound:
            throw HTTPError.notFound("No job \(job.uuidString.lowercased()) for this device.")
        case .staleAttempt:
            throw HTTPError.conflict("Attempt \(result.attempt) no longer holds this job; its result is refused.", code: "stale_attempt")
        case .recorded(let state):
            return try .body(["state": state])
        }
    }

    /// The domain's newest aggregated adapter (safetensors), for devices that apply instead of training. Only a
    /// device the domain's campaign targets (it has a job there) may read it; to any other it does not exist.
    package func domainAdapter(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let domain = try request.uuidParameter("id")
        guard try aggregator.targets(domain: domain, device: device.id),
              let latest = try aggregator.latest(domain: domain) else {
            throw HTTPError.notFound("Domain \(domain.uuidString.lowercased()) has no aggregated adapter yet.")
        }
        var headers = HTTPHeaders()
        headers.set("Content-Type", "application/octet-stream")
        headers.set("ETag", "\"\(Secrets.hex(latest.sha256))\"")
        headers.set("X-Adapter-Version", String(latest.version))
        return HTTPResponse(status: 200, headers: headers, body: latest.content)
    }

    /// The adapter file a `restore` job of the calling device re-installs (`RestoreDownload`): only while it holds
    /// the job, only the file the job names. Any other device's job, or a job of another kind, does not exist here.
    package func restoreAdapters(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let job = try request.uuidParameter("id")
        switch try restore.download(job: job, device: device.id) {
        case .notFound:
            throw HTTPError.notFound("No restore job \(job.uuidString.lowercased()) for this device.")
        case .notHeld:
            throw HTTPError.conflict("No attempt holds this restore job now; lease it before downloading its adapters.", code: "job_not_held")
        case .none:
            throw HTTPError.conflict("The restored config runs no adapters: drop the ones installed and run the plain package.", code: "no_adapters")
        case .unavailable(let why):
            throw HTTPError.conflict("The adapters this restore job names cannot be served: \(why).", code: "adapters_unavailable")
        case .adapters(let content, let sha256):
            var headers = HTTPHeaders()
            headers.set("Content-Type", "application/octet-stream")
            headers.set("ETag", "\"\(Secrets.hex(sha256))\"")
            return HTTPResponse(status: 200, headers: headers, body: content)
        }
    }

    /// The combination a release's `profile` job would move the calling device to, given the latencies it measured
    /// (`Replanner.releasePreview`); nothing is written. Only the attempt holding the job may ask.
    package func releasePlan(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let job = try request.uuidParameter("id")
        let body = try request.decodeValidated(ReleasePlanRequest.self) { $0.validate() }
        let answer: Replanner.ReleasePreview
        do {
            answer = try replanner.releasePreview(job: job, device: device.id, attempt: body.attempt, measured: body.variantLatenciesMs)
        } catch let error as PlanInputError {
            throw HTTPError.planInput(error)
        }
        switch answer {
        case .decision(let decision):
            return try .body(decision)
        case .notFound:
            throw HTTPError.notFound("No job \(job.uuidString.lowercased()) for this device.")
        case .notARelease:
            throw HTTPError.conflict("Job \(job.uuidString.lowercased()) is not a release's profile job: it moves the device to no other model.",
                                     code: "not_a_release")
        case .notHeld:
            throw HTTPError.conflict("Attempt \(body.attempt) does not hold this job now.", code: "job_not_held")
        case .unplannable:
            throw HTTPError.conflict("The release's model cannot be planned for this device now.", code: "not_plannable")
        }
    }

    /// Free-form numeric metrics a device reports outside jobs (e.g. latency it observed while serving).
    package func metrics(_ request: HTTPRequest) throws -> HTTPResponse {
        let device = try routes.auth.requireDevice(request)
        let report = try request.decodeValidated(MetricReport.self) { $0.validate() }
        try metricsStore.record(device: device.id, kind: report.kind, job: nil, values: report.values,
                                         now: clock.now())
        return .init(status: 202)
    }
}

extension HTTPError {
    /// Bytes `ArtifactUpload` refused before storing anything: 422 naming the body, the header, or the tensors.
    static func upload(_ refusal: ArtifactUpload.Refusal) -> HTTPError {
        switch refusal {
        case .emptyBody:
            return .validation([FieldError(field: "body", message: "must be a safetensors file")])
        case .digestMismatch:
            return HTTPError(status: 422, code: "digest_mismatch", detail: "The body's SHA-256 differs from Content-SHA256: it was altered or truncated.",
                             errors: [FieldError(field: "Content-SHA256", message: "does not match the body")])
        case .notSafetensors(let reason):
            return HTTPError(status: 422, code: "invalid_artifact", detail: "The body is not a valid safetensors file: \(reason)",
                             errors: [FieldError(field: "body", message: "must be a safetensors file")])
        case .notF32:
            return HTTPError(status: 422, code: "invalid_artifact", detail: "Adapter weights must be one or more F32 tensors.",
                             errors: [FieldError(field: "body", message: "must hold F32 tensors")])
        case .policy(let refusal):
            return .artifact(refusal)
        }
    }

    /// An artifact, or a success that needs one, refused by `ArtifactPolicy`: 422 `invalid_artifact` naming the first
    /// `ArtifactPolicy.maxListedErrors` offending tensors, or 409 `artifact_missing`.
    package static func artifact(_ refusal: ArtifactRefusal) -> HTTPError {
        switch refusal {
        case .invalid(let errors):
            let listed = Array(errors.prefix(ArtifactPolicy.maxListedErrors))
            let more = errors.count > listed.count ? " (the first \(listed.count) are listed)" : ""
            return HTTPError(status: 422, code: "invalid_artifact",
                             detail: "The artifact holds \(errors.count) tensor(s) that this job may not upload\(more): only the adapters and batch norms of the job's combination, F32, in the model's shapes, finite.",
                             errors: listed.map { FieldError(field: $0.field, message: $0.message) })
        case .missing(let job, let attempt):
            return HTTPError(status: 409, code: "artifact_missing",
                             detail: "Attempt \(attempt) of job \(job.uuidString.lowercased()) uploaded no adapters; PUT /v1/agent/jobs/{id}/artifact?attempt=\(attempt) before reporting success.",
                             errors: [FieldError(field: "outcome", message: "succeeded needs this attempt's artifact")])
        }
    }
}

/// The HTTP face of a parked job long-poll: the scheduler's `JobWaiters` hands it a job or nothing, and this
/// renders the answer (a leased job as JSON, nothing as 204).
package struct LongPollJobWaiter: JobWaiter {
    package let poll: LongPoll

    package var isCompleted: Bool { poll.isCompleted }
    package var clientHasGone: Bool { poll.clientHasGone }

    package func completeEmpty() { poll.complete(HTTPResponse(status: 204)) }

    package func complete(with job: LeasedJob, ifUndelivered: @escaping @Sendable () -> Void) -> Bool {
        poll.complete((try? HTTPResponse.body(job)) ?? HTTPResponse(status: 500), ifUndelivered: ifUndelivered)
    }
}
