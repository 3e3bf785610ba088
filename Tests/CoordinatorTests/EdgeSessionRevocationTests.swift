import ElasticModel
import Foundation
import Learning
import Testing

/// Decommissioning reaches the edge: a real `fleetadapt-edge` re-checks an open session's device with the real
/// coordinator once its confirmation is older than `--session-ttl`, and drops the session of a device the
/// coordinator no longer accepts (401), while other devices' sessions keep serving.
@Suite(.serialized) struct EdgeSessionRevocationTests {
    /// Opens a session with none of the device's own tensors and returns the features to infer on.
    static func openSession(_ c: TestCoordinator, _ edge: EdgeSplitTests.EdgeProcess, name: String) async throws -> (id: String, token: String, x: Data) {
        let device = try await ConfigTests.register(c, name: name, gflops: 0.05, latency: 20)
        #expect(try await c.request("PUT", "/v1/agent/context", token: device.token, json: EdgeSplitTests.fastLink).status == 200)
        let config = try #require(try await c.request("GET", "/v1/agent/config", token: device.token).object)
        let cut = try #require((config["partition"] as? [String: Any])?["split_after_block"] as? Int, "\(config)")
        let net = try ElasticPackage.loadNetwork(path: FleetAdaptationTests.baseModel)
        try net.compose(ids: try #require((config["variants"] as? [[String: Any]])?.compactMap { $0["variant"] as? String }))
        let opened = try await EdgeSplitTests.send("PUT", edge.url + "/v1/edge/session", token: device.token, body: EdgeSplitTests.safetensors([:]))
        #expect(opened.status == 200, "\(opened.text)")
        let images = try FashionMNIST.load(split: .test, limit: 2)
        let features = net.model.forwardPrefix(images.tensor([0, 1]), through: cut)
        return (device.id, device.token, EdgeSplitTests.safetensors(["x": SafeTensor(floats: features.data, shape: features.shape)]))
    }

    @Test func aDecommissionedDeviceLosesItsEdgeSession() async throws {
        let c = try TestCoordinator()
        _ = try await ConfigTests.publish(c)
        let edge = try EdgeSplitTests.EdgeProcess(coordinator: c.baseURL, arguments: ["--session-ttl", "1"])
        let gone = try await Self.openSession(c, edge, name: "to-decommission")
        let kept = try await Self.openSession(c, edge, name: "kept")
        let url = edge.url + "/v1/edge/infer"
        #expect(try await EdgeSplitTests.send("POST", url, token: gone.token, body: gone.x).status == 200)
        #expect(try await EdgeSplitTests.send("POST", url, token: kept.token, body: kept.x).status == 200)

        #expect(try await c.request("DELETE", "/v1/devices/\(gone.id)").status == 204)
        // Within the TTL (1 s) plus a generous margin for a loaded machine, the edge asks the coordinator and drops it.
        var answer = try await EdgeSplitTests.send("POST", url, token: gone.token, body: gone.x)
        let deadline = Date().addingTimeInterval(60)
        while answer.status == 200 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            answer = try await EdgeSplitTests.send("POST", url, token: gone.token, body: gone.x)
        }
        #expect(answer.status == 401 && answer.isProblem && answer.problemCode == "unauthorized", "\(answer.status) \(answer.text)")
        // The session is gone: the next request finds none (it is not kept and re-checked forever).
        let after = try await EdgeSplitTests.send("POST", url, token: gone.token, body: gone.x)
        #expect(after.status == 409 && after.problemCode == "no_session", "\(after.status) \(after.text)")
        // Reopening is refused too, as unauthorised: the coordinator no longer accepts the device.
        let reopened = try await EdgeSplitTests.send("PUT", edge.url + "/v1/edge/session", token: gone.token, body: EdgeSplitTests.safetensors([:]))
        #expect(reopened.status == 401 && reopened.problemCode == "unauthorized", "\(reopened.status) \(reopened.text)")
        // Another device's session still serves, re-confirmed by the coordinator.
        try await Task.sleep(for: .milliseconds(1200))
        #expect(try await EdgeSplitTests.send("POST", url, token: kept.token, body: kept.x).status == 200)
    }
}
