/// The one im2col walk of both GEMM paths, and its adjoint. A column matrix has `channels·K·K` rows of
/// `Ho·Wo` entries each, rows `ldc` floats apart: `ldc = Ho·Wo` for one image, `N·Ho·Wo` when the images of a
/// batch sit side by side (sample i at column offset i·Ho·Wo).
extension Convolution {
    /// col[(ci·K + ky)·K + kx][oy·Wo + ox] = x[ci, oy·s − pad + ky, ox·s − pad + kx] (0 outside), for the
    /// `channels` planes (H, W) starting at x.
    func im2col(_ x: UnsafePointer<Float>, channels: Int, h: Int, w: Int, ho: Int, wo: Int,
                col: UnsafeMutablePointer<Float>, ldc: Int) {
        var row = 0
        for ci in 0..<channels {
            let plane = x + ci * h * w
            for ky in 0..<kernel { for kx in 0..<kernel {
                let base = col + row * ldc
                row += 1
                for oy in 0..<ho {
                    let dst = base + oy * wo
                    let iy = oy * stride - padding + ky
                    if iy < 0 || iy >= h { dst.update(repeating: 0, count: wo); continue }
                    let src = plane + iy * w
                    if stride == 1 {
                        // A contiguous run: zero the padded ends, copy the valid middle in one move.
                        let shift = kx - padding                       // ix = ox + shift
                        let lo = min(max(0, -shift), wo), hi = max(min(wo, w - shift), lo)
                        if lo > 0 { dst.update(repeating: 0, count: lo) }
                        if hi > lo { (dst + lo).update(from: src + lo + shift, count: hi - lo) }
                        if hi < wo { (dst + hi).update(repeating: 0, count: wo - hi) }
                    } else {
                        for ox in 0..<wo {
                            let ix = ox * stride - padding + kx
                            dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0
                        }
                    }
                }
            } }
        }
    }

    /// The adjoint of `im2col`: adds each column entry back to the input position it came from.
    func col2im(_ col: UnsafePointer<Float>, channels: Int, h: Int, w: Int, ho: Int, wo: Int, ldc: Int,
                dx: UnsafeMutablePointer<Float>) {
        var row = 0
        for ci in 0..<channels {
            let plane = dx + ci * h * w
            for ky in 0..<kernel { for kx in 0..<kernel {
                let base = col + row * ldc
                row += 1
                for oy in 0..<ho {
                    let iy = oy * stride - padding + ky
                    if iy < 0 || iy >= h { continue }
                    let src = base + oy * wo, dst = plane + iy * w
                    if stride == 1 {
                        // Only the valid run: no bounds test per element.
                        let shift = kx - padding
                        let lo = min(max(0, -shift), wo), hi = max(min(wo, w - shift), lo)
                        for ox in lo..<hi { dst[ox + shift] += src[ox] }
                    } else {
                        for ox in 0..<wo {
                            let ix = ox * stride - padding + kx
                            if ix >= 0 && ix < w { dst[ix] += src[ox] }
                        }
                    }
                }
            } }
        }
    }
}
