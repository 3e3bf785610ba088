/// How a package's network wants its input made from an image: the manifest's `preprocessing` record, applied
/// identically by the builder, the agent and the edge.
///
/// The definition (what `deploy/tools/make_image_fixtures.py` reproduces with torchvision, to 1e-4):
///  1. channels on the 8-bit decode: `gray` from RGB is Pillow's `convert("L")` (ITU-R 601-2, integer
///     `(19595 R + 38470 G + 7471 B + 32768) >> 16`); `rgb`/`bgr` from gray repeats the gray channel;
///  2. to Float32 CHW, divided by 255 when `scale_to_unit` (else 0…255);
///  3. `resize`: `shorter_side` N scales the shorter side to N and the longer to ⌊N · long / short⌋ (torchvision's
///     `Resize(N)`), or to exactly `width`×`height`; bilinear with half-pixel centres, edge clamping and no
///     antialiasing: `torchvision.transforms.functional.resize(tensor, …, BILINEAR, antialias=False)`, i.e.
///     `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`;
///  4. `crop`: centre crop, offsets `round((size − crop) / 2)` with Python's round-half-to-even (torchvision's
///     `center_crop`); a crop larger than the image is an error (torchvision would pad with zeros);
///  5. `bgr` reverses the channel order;
///  6. `(x − mean[c]) / std[c]` per channel;
///  7. output NCHW Float32, N = 1 per image.
public struct Preprocessing: Codable, Sendable, Hashable {
    public enum Channels: String, Codable, Sendable, Hashable {
        case rgb, bgr, gray
        public var count: Int { self == .gray ? 1 : 3 }
    }

    public enum Interpolation: String, Codable, Sendable, Hashable {
        case bilinear
    }

    /// Either `shorter_side` alone or both `width` and `height`.
    public struct Resize: Codable, Sendable, Hashable {
        public var shorterSide: Int?
        public var width: Int?
        public var height: Int?

        public init(shorterSide: Int?, width: Int?, height: Int?) {
            self.shorterSide = shorterSide
            self.width = width
            self.height = height
        }

        public static func shorterSide(_ n: Int) -> Resize { Resize(shorterSide: n, width: nil, height: nil) }
        public static func size(width: Int, height: Int) -> Resize { Resize(shorterSide: nil, width: width, height: height) }

        enum CodingKeys: String, CodingKey {
            case shorterSide = "shorter_side"
            case width, height
        }
    }

    public struct Crop: Codable, Sendable, Hashable {
        public var width: Int
        public var height: Int
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
    }

    /// A field of this record that is invalid, relative to the record (`std[1]`, `resize.shorter_side`).
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let field: String
        public let message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
        public var description: String { "\(field): \(message)" }
    }

    /// Thrown by `check()` and `apply` for an invalid record or an image it cannot be applied to.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let problems: [Problem]
        public init(problems: [Problem]) { self.problems = problems }
        public var description: String { "invalid preprocessing: " + problems.map(\.description).joined(separator: "; ") }
    }

    public var resize: Resize?
    public var interpolation: Interpolation
    public var crop: Crop?
    public var channels: Channels
    public var scaleToUnit: Bool
    public var mean: [Float]
    public var std: [Float]

    /// Largest side accepted for `resize` and `crop` (bounds the output tensor a manifest can ask for).
    public static let maxSide = 4096

    public init(resize: Resize? = nil, interpolation: Interpolation = .bilinear, crop: Crop? = nil, channels: Channels = .rgb,
                scaleToUnit: Bool = true, mean: [Float]? = nil, std: [Float]? = nil) {
        self.resize = resize
        self.interpolation = interpolation
        self.crop = crop
        self.channels = channels
        self.scaleToUnit = scaleToUnit
        self.mean = mean ?? [Float](repeating: 0, count: channels.count)
        self.std = std ?? [Float](repeating: 1, count: channels.count)
    }

    enum CodingKeys: String, CodingKey {
        case resize, interpolation, crop, channels, mean, std
        case scaleToUnit = "scale_to_unit"
    }

    /// Every invalid field, empty when the record is usable.
    public func validate() -> [Problem] {
        var p: [Problem] = []
        func side(_ v: Int?, _ field: String) {
            guard let v else { return }
            if v < 1 || v > Self.maxSide { p.append(Problem(field: field, message: "must be between 1 and \(Self.maxSide), got \(v)")) }
        }
        if let r = resize {
            switch (r.shorterSide, r.width, r.height) {
            case (.some, nil, nil), (nil, .some, .some): break
            case (.some, _, _): p.append(Problem(field: "resize", message: "give either shorter_side or width and height, not both"))
            case (nil, _, _): p.append(Problem(field: "resize", message: "give shorter_side, or both width and height"))
            }
            side(r.shorterSide, "resize.shorter_side")
            side(r.width, "resize.width")
            side(r.height, "resize.height")
        }
        if let c = crop {
            side(c.width, "crop.width")
            side(c.height, "crop.height")
            // The resized image is known here when the resize fixes it: a larger crop can never apply.
            if let r = resize {
                let minW = r.shorterSide ?? r.width ?? 0, minH = r.shorterSide ?? r.height ?? 0
                if minW > 0, c.width > minW, (1...Self.maxSide).contains(minW) {
                    p.append(Problem(field: "crop.width", message: "\(c.width) is wider than the resized image (\(minW))"))
                }
                if minH > 0, c.height > minH, (1...Self.maxSide).contains(minH) {
                    p.append(Problem(field: "crop.height", message: "\(c.height) is taller than the resized image (\(minH))"))
                }
            }
        }
        for (name, values, positive) in [("mean", mean, false), ("std", std, true)] {
            if values.count != channels.count {
                p.append(Problem(field: name, message: "has \(values.count) values for \(channels.count) channel(s) (\(channels.rawValue))"))
            }
            for (i, v) in values.enumerated() {
                if !v.isFinite { p.append(Problem(field: "\(name)[\(i)]", message: "must be finite, got \(v)")) }
                else if positive && v <= 0 { p.append(Problem(field: "\(name)[\(i)]", message: "must be positive, got \(v)")) }
            }
        }
        return p
    }

    public func check() throws {
        let p = validate()
        if !p.isEmpty { throw Invalid(problems: p) }
    }

    /// The (height, width) after resize for an input of `height`×`width`.
    func resized(height: Int, width: Int) -> (height: Int, width: Int) {
        guard let r = resize else { return (height, width) }
        if let w = r.width, let h = r.height { return (h, w) }
        let n = r.shorterSide!
        if width <= height { return (Int(Double(n) * Double(height) / Double(width)), n) }
        return (n, Int(Double(n) * Double(width) / Double(height)))
    }

    /// The output shape [1, C, H, W] for an image of `height`×`width`.
    public func outputShape(height: Int, width: Int) throws -> [Int] {
        try check()
        let (h, w) = resized(height: height, width: width)
        if let c = crop {
            guard c.width <= w, c.height <= h else {
                throw Invalid(problems: [Problem(field: "crop", message: "\(c.width)x\(c.height) is larger than the \(w)x\(h) image it applies to")])
            }
            return [1, channels.count, c.height, c.width]
        }
        guard w <= Self.maxSide, h <= Self.maxSide else {
            throw Invalid(problems: [Problem(field: "resize", message: "the output would be \(w)x\(h), over \(Self.maxSide) per side")])
        }
        return [1, channels.count, h, w]
    }

    /// The image as an NCHW Float32 tensor (N = 1), shape `outputShape(height:width:)`.
    public func apply(_ image: Image) throws -> (shape: [Int], data: [Float]) {
        let shape = try outputShape(height: image.height, width: image.width)
        let c = channels.count
        // 1–2. Channels on the 8-bit samples, then Float32 CHW, scaled.
                let hw = image.width * image.height
        // Division, not a multiplication by 1/255: the same float as torch's `t / 255`.
        let unit = scaleToUnit
        func scaled(_ v: Float) -> Float { unit ? v / 255 : v }
        var chw = [Float](repeating: 0, count: c * hw)
        image.pixels.withUnsafeBufferPointer { px in
            chw.withUnsafeMutableBufferPointer { out in
                switch (image.channels, c) {
                case (3, 1):
                    for i in 0..<hw {
                        let r = UInt32(px[3 * i]), g = UInt32(px[3 * i + 1]), b = UInt32(px[3 * i + 2])
                        out[i] = scaled(Float((19595 * r + 38470 * g + 7471 * b + 32768) >> 16))
                    }
                case (1, _):
                    for i in 0..<hw { let v = scaled(Float(px[i])); for k in 0..<c { out[k * hw + i] = v } }
                default:
                    for i in 0..<hw { for k in 0..<3 { out[k * hw + i] = scaled(Float(px[3 * i + k])) } }
                }
            }
        }
        // 3. Resize.
        var (h, w) = (image.height, image.width)
        if resize != nil {
            let (nh, nw) = resized(height: h, width: w)
            if nh != h || nw != w {
                chw = Self.bilinear(chw, channels: c, height: h, width: w, toHeight: nh, toWidth: nw)
                (h, w) = (nh, nw)
            }
        }
        // 4. Centre crop.
        if let cr = crop, cr.width != w || cr.height != h {
            let top = Self.roundHalfEven(Double(h - cr.height) / 2), left = Self.roundHalfEven(Double(w - cr.width) / 2)
            var cropped = [Float](repeating: 0, count: c * cr.width * cr.height)
            for k in 0..<c {
                for y in 0..<cr.height {
                    let src = k * h * w + (y + top) * w + left, dst = (k * cr.height + y) * cr.width
                    for x in 0..<cr.width { cropped[dst + x] = chw[src + x] }
                }
            }
            chw = cropped
            (h, w) = (cr.height, cr.width)
        }
        // 5–6. Channel order, mean/std.
        let plane = h * w
        var out = [Float](repeating: 0, count: c * plane)
        for k in 0..<c {
            let from = channels == .bgr ? 2 - k : k
            let m = mean[k], s = std[k]
            for i in 0..<plane { out[k * plane + i] = (chw[from * plane + i] - m) / s }
        }
        return (shape, out)
    }

    /// `torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)` on CHW Float32.
    static func bilinear(_ x: [Float], channels: Int, height: Int, width: Int, toHeight oh: Int, toWidth ow: Int) -> [Float] {
        struct Tap { let i0: Int; let i1: Int; let l0: Float; let l1: Float }
        // Per output index: the two source indices and their weights, as PyTorch's `area_pixel_compute_source_index`.
        func taps(_ input: Int, _ output: Int) -> [Tap] {
            let scale = Float(input) / Float(output)
            return (0..<output).map { o in
                let src = max(scale * (Float(o) + 0.5) - 0.5, 0)
                let i0 = min(Int(src), input - 1)
                let i1 = i0 + (i0 < input - 1 ? 1 : 0)
                let l1 = src - Float(i0)
                return Tap(i0: i0, i1: i1, l0: 1 - l1, l1: l1)
            }
        }
        let ty = taps(height, oh), tx = taps(width, ow)
        var out = [Float](repeating: 0, count: channels * oh * ow)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    let base = c * height * width
                    for (oy, a) in ty.enumerated() {
                        let r0 = base + a.i0 * width, r1 = base + a.i1 * width
                        let o = (c * oh + oy) * ow
                        for (ox, b) in tx.enumerated() {
                            dst[o + ox] = a.l0 * (b.l0 * src[r0 + b.i0] + b.l1 * src[r0 + b.i1])
                                + a.l1 * (b.l0 * src[r1 + b.i0] + b.l1 * src[r1 + b.i1])
                        }
                    }
                }
            }
        }
        return out
    }

    /// Python's `round()` on a non-negative half-integer or integer: ties to even.
    static func roundHalfEven(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }
}
