import ElasticModel
import Foundation
import ImageIO
import Learning

/// With `--watch` and `--serve`: frames newly written into the spool folder are classified by the served network
/// as they arrive (every `interval`), feeding the drift window as served predictions do, so a stream change shows
/// even when no application asks. It reads only; nothing in the folder is deleted or written.
final class SpoolWatcher: Sendable {
    let directory: String
    let window: Int
    let service: InferenceService
    let interval: Double
    private let seen = Shared<Set<String>>([])
    private let stopFlag = Shared(false)

    init(directory: String, window: Int, service: InferenceService, interval: Double = 2) {
        self.directory = directory
        self.window = window
        self.service = service
        self.interval = interval
    }

    func start() {
        Thread { [self] in
            // What is there at start is the data adapted on, not new frames.
            _ = scan(classify: false)
            while !stopFlag.value {
                Thread.sleep(forTimeInterval: interval)
                _ = scan(classify: true)
            }
        }.start()
    }

    func stop() { stopFlag.set(true) }

    /// Scans the newest `window` images; those not seen before are classified (when `classify`). Returns how many.
    @discardableResult
    func scan(classify: Bool) -> Int {
        guard let folder = try? ImageFolder.scan(directory, newest: window) else { return 0 }
        let keys = folder.entries.map { "\($0.relativePath)|\($0.modified.timeIntervalSince1970)|\($0.size)" }
        let known = seen.value
        let fresh = zip(folder.entries, keys).filter { !known.contains($0.1) }.map(\.0)
        // Only the current window is remembered (bounded by `window`).
        seen.set(Set(keys))
        guard classify, !fresh.isEmpty, let net = service.served else { return 0 }
        var inputs: [Float] = []
        var n = 0
        for entry in fresh {
            // The package's pipeline, as the job's data read and a served image.
            guard let image = try? ImageDecoder.decode(file: entry.path), let t = try? net.input.tensor(image) else {
                continue   // the job's data read logs bad files; the watcher stays quiet
            }
            inputs.append(contentsOf: t.data)
            n += 1
        }
        guard n > 0 else { return 0 }
        let logits = net.whole.forward([Tensor(shape: [n] + net.inputShape, data: inputs)])[0]
        let k = logits.shape[1]
        for i in 0..<n {
            let s = ClassScores(logits: logits.data[(i * k)..<((i + 1) * k)])
            service.drift.record(entropy: s.entropy, confidence: s.confidence)
        }
        service.metrics.spooled(n)
        return n
    }
}
