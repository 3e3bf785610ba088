import ElasticModel
import FleetAPI
import Foundation
import ImageIO
import Learning
import Synchronization

/// One network as the inference service serves it, immutable once built: the device's combination with its
/// adapters and batch-norm statistics, as an `InferenceGraph` (a Sendable value with its own copy of the
/// parameters, so concurrent requests run it without a lock and nothing done to the package afterwards changes it).
/// A config or adapter change builds a new one and swaps the service's reference: a request reads the reference
/// once and finishes on that network, so no request ever mixes two.
final class ServedNetwork: Sendable {
    /// Counts the networks this service has served (1 = the first).
    let generation: Int
    let modelID: UUID
    /// The coordinator's config version it serves (nil: a local package without a config).
    let configVersion: Int?
    let combination: [String]
    /// (C, H, W).
    let inputShape: [Int]
    let classNames: [String]
    /// How an image in a request or the spool becomes the input: the package's pipeline, as its local data.
    let input: PackageInput
    let whole: InferenceGraph
    /// Set when the config cuts the network and the edge session opened.
    let split: SplitPath?

    init(generation: Int, modelID: UUID, configVersion: Int?, combination: [String], inputShape: [Int], classNames: [String],
         input: PackageInput, whole: InferenceGraph, split: SplitPath?) {
        self.generation = generation
        self.modelID = modelID
        self.configVersion = configVersion
        self.combination = combination
        self.inputShape = inputShape
        self.classNames = classNames
        self.input = input
        self.whole = whole
        self.split = split
    }
}

/// The split half kept on the device: its own network (the prefix runs on it, one request at a time) and the
/// edge session that runs the suffix.
final class SplitPath: Sendable {
    let afterBlock: Int
    /// The planner's estimate of the suffix's compute on the edge (ms): the edge's share of a round trip.
    let edgeComputeMs: Double
    let link: EdgeLink
    private let network: Mutex<ElasticNetwork>

    init(afterBlock: Int, edgeComputeMs: Double, link: EdgeLink, network: consuming sending ElasticNetwork) {
        self.afterBlock = afterBlock
        self.edgeComputeMs = edgeComputeMs
        self.link = link
        self.network = Mutex(network)
    }

    func prefix(_ x: Tensor) -> Tensor {
        let k = afterBlock
        return network.withLock { net in net.model.forwardPrefix(x, through: k) }
    }
}

/// Softmax, entropy (nats) and top-k of one row of logits.
struct ClassScores: Sendable {
    var probabilities: [Float]
    var entropy: Double
    var confidence: Double

    init(logits row: ArraySlice<Float>) {
        let m = row.max() ?? 0
        let e = row.map { Foundation.exp(Double($0 - m)) }
        let z = e.reduce(0, +)
        let p = e.map { $0 / z }
        probabilities = p.map { Float($0) }
        entropy = -p.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) }
        confidence = p.max() ?? 0
    }

    func top(_ k: Int) -> [Int] {
        Array(probabilities.indices.sorted { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }.prefix(k))
    }
}
