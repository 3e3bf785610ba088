import ElasticModel
import FleetAPI
import FleetClient
import Foundation
import Learning

/// The device's side of split inference: it opens a session on the edge server with the tensors its adaptation
/// changed after the cut, then sends cut features and receives logits. The edge server learns the cut and the
/// variants from the coordinator, not from here. The edge server speaks the same bearer-token HTTP as the
/// coordinator, so the link uses the same client (its untyped `send`).
struct EdgeLink {
    let client: CoordinatorClient

    init(url: String, token: String, tls: ClientTLS = ClientTLS()) {
        client = CoordinatorClient(baseURL: url, token: token, tls: tls)
    }

    /// Opens (or replaces) this device's session with its own tensors of the positions after `split`.
    func open(_ net: ElasticNetwork, split: Int, tensors: [String: SafeTensor]) throws -> EdgeSessionView {
        let suffix = net.positions.dropFirst(split + 1).map { $0.name + "." }
        let mine = tensors.filter { name, _ in suffix.contains { name.hasPrefix($0) } }
        let r = try client.send("PUT", "/v1/edge/session", body: Data(SafeTensors.encode(mine)), contentType: "application/octet-stream", attempts: 3)
        guard r.status == 200 else {
            throw CoordinatorClient.Failure(description: "edge session refused: HTTP \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        return try CoordinatorClient.decode(EdgeSessionView.self, r.body)
    }

    /// Median wall time of a minimal request to the edge server (10 after 2 warm-ups), nil when it cannot be reached.
    func roundTripMs() -> Double? {
        var samples: [Double] = []
        for run in 0..<12 {
            let start = Date()
            guard let r = try? client.send("GET", "/healthz", attempts: 1), r.status == 200 else { return nil }
            if run >= 2 { samples.append(Date().timeIntervalSince(start) * 1000) }
        }
        return samples.sorted()[samples.count / 2]
    }

    /// The edge half: features after the cut → logits.
    func infer(_ features: Tensor) throws -> Tensor {
        let body = Data(SafeTensors.encode(["x": SafeTensor(floats: features.data, shape: features.shape)]))
        let r = try client.send("POST", "/v1/edge/infer", body: body, contentType: "application/octet-stream", attempts: 1)
        guard r.status == 200 else {
            throw CoordinatorClient.Failure(description: "edge inference refused: HTTP \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        guard let logits = try SafeTensors.decode(Array(r.body)).tensors["logits"] else {
            throw CoordinatorClient.Failure(description: "edge answer has no logits")
        }
        return Tensor(shape: logits.shape, data: try logits.floats())
    }
}
