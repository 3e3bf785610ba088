import Foundation

/// Target domains in the style of MNIST-C / CIFAR-10-C (Hendrycks & Dietterich), scaled for 28×28 grayscale,
/// at severities 1–5. Deterministic: image i uses its own random stream derived from (seed, i), so corrupting
/// a subset gives the same pixels as corrupting the whole set.
public enum Corruption: String, CaseIterable, Codable, Sendable {
    case gaussianNoise = "gaussian-noise", shotNoise = "shot-noise", impulseNoise = "impulse-noise"
    case defocusBlur = "defocus-blur", motionBlur = "motion-blur"
    case brightness, contrast, fog, pixelate, rotation, inversion

    public func apply(to data: LabeledImages, severity: Int, seed: UInt64, firstIndex: Int = 0) throws -> LabeledImages {
        guard (1...5).contains(severity) else { throw DataError("severity must be 1–5, got \(severity)") }
        var out = data
        let (h, w) = (data.height, data.width)
        let per = data.perImage
        for i in 0..<data.count {
            var rng = SeededRandom(seed: seed ^ (UInt64(firstIndex + i) &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(Corruption.allCases.firstIndex(of: self)! + 1) << 56)
            for c in 0..<data.channels {
                let base = i * per + c * h * w
                var x = (0..<(h * w)).map { Float(data.images[base + $0]) / 255 }
                x = corrupt(x, h: h, w: w, s: severity - 1, rng: &rng)
                for k in 0..<(h * w) { out.images[base + k] = UInt8(max(0, min(255, (x[k] * 255).rounded()))) }
            }
        }
        return out
    }

    func corrupt(_ x: [Float], h: Int, w: Int, s: Int, rng: inout SeededRandom) -> [Float] {
        switch self {
        case .gaussianNoise:
            let sigma: Float = [0.08, 0.12, 0.18, 0.26, 0.38][s]
            return x.map { $0 + sigma * rng.normal() }
        case .shotNoise:
            let lambda: Float = [60, 25, 12, 5, 3][s]
            return x.map { v in
                let mean = v * lambda
                return max(0, mean + mean.squareRoot() * rng.normal()) / lambda   // Poisson, normal approximation
            }
        case .impulseNoise:
            let amount: Float = [0.03, 0.06, 0.09, 0.17, 0.27][s]
            return x.map { v in
                let u = rng.uniform(0, 1)
                return u < amount / 2 ? 0 : (u < amount ? 1 : v)
            }
        case .defocusBlur:
            let r: Float = [0.6, 1.0, 1.5, 2.0, 2.5][s]
            let k = Int(r.rounded(.up))
            var kernel: [(Int, Int, Float)] = []
            for dy in -k...k { for dx in -k...k where Float(dx * dx + dy * dy) <= r * r + 0.25 { kernel.append((dy, dx, 1)) } }
            return convolve(x, h: h, w: w, kernel)
        case .motionBlur:
            let length = [3, 5, 7, 9, 11][s]
            let angle = rng.uniform(-Float.pi / 4, Float.pi / 4)
            var kernel: [(Int, Int, Float)] = []
            for t in 0..<length {
                let d = Float(t) - Float(length - 1) / 2
                kernel.append((Int((d * sinf(angle)).rounded()), Int((d * cosf(angle)).rounded()), 1))
            }
            return convolve(x, h: h, w: w, kernel)
        case .brightness:
            let b: Float = [0.1, 0.2, 0.3, 0.4, 0.5][s]
            return x.map { $0 + b }
        case .contrast:
            let c: Float = [0.4, 0.3, 0.2, 0.1, 0.05][s]
            let mean = x.reduce(0, +) / Float(x.count)
            return x.map { ($0 - mean) * c + mean }
        case .fog:
            let f: Float = [0.25, 0.4, 0.55, 0.7, 0.85][s]
            let fog = plasma(h: h, w: w, rng: &rng)
            let peak = x.max() ?? 1
            return zip(x, fog).map { ($0 + f * $1) * peak / (peak + f) }
        case .pixelate:
            let factor: Float = [0.8, 0.6, 0.5, 0.4, 0.3][s]
            let sh = max(1, Int(Float(h) * factor)), sw = max(1, Int(Float(w) * factor))
            var small = [Float](repeating: 0, count: sh * sw)
            var counts = [Float](repeating: 0, count: sh * sw)
            for y in 0..<h { for xx in 0..<w { let j = (y * sh / h) * sw + xx * sw / w; small[j] += x[y * w + xx]; counts[j] += 1 } }
            for j in small.indices { small[j] /= max(counts[j], 1) }
            return (0..<(h * w)).map { small[($0 / w) * sh / h * sw + ($0 % w) * sw / w] }
        case .rotation:
            let degrees: Float = [10, 20, 30, 40, 50][s] * (rng.next() & 1 == 0 ? 1 : -1)
            let a = degrees * .pi / 180
            let (cy, cx) = (Float(h - 1) / 2, Float(w - 1) / 2)
            return (0..<(h * w)).map { k in
                let (y, xx) = (Float(k / w) - cy, Float(k % w) - cx)
                let sy = cosf(a) * y - sinf(a) * xx + cy, sx = sinf(a) * y + cosf(a) * xx + cx
                return bilinear(x, h: h, w: w, sy, sx)
            }
        case .inversion:
            let a: Float = [0.2, 0.4, 0.6, 0.8, 1.0][s]
            return x.map { $0 * (1 - a) + (1 - $0) * a }
        }
    }

    func convolve(_ x: [Float], h: Int, w: Int, _ kernel: [(Int, Int, Float)]) -> [Float] {
        let total = kernel.reduce(0) { $0 + $1.2 }
        return (0..<(h * w)).map { k in
            let (y, xx) = (k / w, k % w)
            var s: Float = 0
            for (dy, dx, wt) in kernel {
                let yy = min(max(y + dy, 0), h - 1), xq = min(max(xx + dx, 0), w - 1)
                s += wt * x[yy * w + xq]
            }
            return s / total
        }
    }

    func bilinear(_ x: [Float], h: Int, w: Int, _ y: Float, _ xx: Float) -> Float {
        guard y >= 0, xx >= 0, y <= Float(h - 1), xx <= Float(w - 1) else { return 0 }
        let y0 = Int(y), x0 = Int(xx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
        let fy = y - Float(y0), fx = xx - Float(x0)
        return (x[y0 * w + x0] * (1 - fx) + x[y0 * w + x1] * fx) * (1 - fy) + (x[y1 * w + x0] * (1 - fx) + x[y1 * w + x1] * fx) * fy
    }

    /// Smooth random field in [0, 1]: random grids at several scales, bilinearly upsampled and summed.
    func plasma(h: Int, w: Int, rng: inout SeededRandom) -> [Float] {
        var field = [Float](repeating: 0, count: h * w)
        var amplitude: Float = 1
        for cells in [2, 4, 8] {
            let grid = (0..<((cells + 1) * (cells + 1))).map { _ in rng.uniform(0, 1) }
            for k in 0..<(h * w) {
                let gy = Float(k / w) / Float(h - 1) * Float(cells), gx = Float(k % w) / Float(w - 1) * Float(cells)
                field[k] += amplitude * bilinear(grid, h: cells + 1, w: cells + 1, gy, gx)
            }
            amplitude /= 2
        }
        let lo = field.min() ?? 0, hi = field.max() ?? 1
        return field.map { ($0 - lo) / max(hi - lo, 1e-6) }
    }
}

/// A device's local data: a directory holding `data.safetensors` with uint8 `images` (N, C, H, W), optional
/// `labels` (N; uint8, or int32 for more than 256 classes) — used only to report accuracy, never to train — and string metadata
/// (`corruption`, `severity`, `seed`, `source`).
public enum LocalDataset {
    public static let fileName = "data.safetensors"

    public static func write(_ data: LabeledImages, metadata: [String: String], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var tensors = ["images": SafeTensor(uint8: data.images, shape: [data.count, data.channels, data.height, data.width])]
        if let labels = data.labels { tensors["labels"] = labels.tensor }
        try SafeTensors.write(tensors, metadata: metadata, to: directory + "/" + fileName)
    }

    public static func read(directory: String) throws -> (data: LabeledImages, metadata: [String: String]) {
        let (tensors, metadata) = try SafeTensors.read(path: directory + "/" + fileName)
        guard let images = tensors["images"], images.dtype == .U8, images.shape.count == 4 else {
            throw DataError("\(directory)/\(fileName): needs a uint8 `images` tensor of shape (N, C, H, W)")
        }
        let n = images.shape[0]
        var labels: ClassLabels?
        if let l = tensors["labels"] {
            guard let read = ClassLabels(tensor: l, count: n) else {
                throw DataError("\(directory)/\(fileName): `labels` must be uint8 or int32 (non-negative) of shape (\(n))")
            }
            labels = read
        }
        return (LabeledImages(images: images.bytes, classLabels: labels, count: n, channels: images.shape[1], height: images.shape[2], width: images.shape[3]), metadata)
    }
}
