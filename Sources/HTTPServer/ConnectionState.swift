/// Per-request state behind MHD's `*con_cls`. Created by the URI-log callback, released by the request-completed
/// callback; in between only the MHD worker thread that owns the connection touches it, so it needs no lock.
final class ConnectionState {
    enum Stage {
        /// Headers parsed, the access handler has not run yet.
        case new
        /// Receiving (or discarding) the body; the final call runs the handler.
        case body
        /// A long-poll parked the connection; the next call sends `poll`'s response.
        case suspended
        case responded
    }

    let started: ContinuousClock.Instant
    let target: String
    var stage = Stage.new
    var methodName = "-"
    var route: Route?
    var request: HTTPRequest?
    /// Decided before the body arrived (404, 405, 400, 413...); the body is then discarded.
    var error: HTTPError?
    var limit = 0
    var received = 0
    var spoolFD: Int32 = -1
    var spoolPath: String?
    var poll: LongPoll?
    var requestID = ""
    /// Kept for the access line after `request` is handed to the handler (and dropped with its body).
    var clientAddress: String?
    var actor: String?
    var status = 0
    var bytesSent = 0
    /// Answered before its body was read: the connection closes after a lingering drain.
    var lingers = false

    init(target: String, started: ContinuousClock.Instant) {
        self.target = target
        self.started = started
    }

    var path: Substring { URIParsing.split(target).path }
}
