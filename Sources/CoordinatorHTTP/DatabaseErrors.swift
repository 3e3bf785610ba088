import CoordinatorStore
import HTTPServer
import PostgresClient

/// Runs a handler body and turns database failures into HTTP problems in one place:
/// a lost or restarting server is a 503 the client may retry, anything else is logged and hidden as a 500.
package func mapDatabaseErrors<T>(_ requestID: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as PostgresError {
        switch error.kind {
        case .connection, .poolTimeout:
            throw HTTPError.serviceUnavailable("The database is unavailable; retry shortly.", retryAfter: 1)
        default:
            if error.isConnectionFailure {
                throw HTTPError.serviceUnavailable("The database is unavailable; retry shortly.", retryAfter: 1)
            }
            Log.error("database error request_id=\(requestID): \(error)")
            throw HTTPError.internalError(requestID)
        }
    }
}
