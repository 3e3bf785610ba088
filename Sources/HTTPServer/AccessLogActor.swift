/// What a route's `authorize` result says about who made the request, for the access log's `actor` field (an
/// API key's id and name, a device id). Never a secret: the description is logged as it is.
public protocol AccessLogActor: Sendable {
    var actorDescription: String { get }
}
