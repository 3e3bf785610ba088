/// Whoever `HTTPRequest.authorization` says made a request, as the access log and the audit log name them
/// (e.g. "key:<id>:<name>", "device:<id>"): never a secret.
public protocol AccessLogActor: Sendable {
    var actorDescription: String { get }
}
