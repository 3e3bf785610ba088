/// Depthwise convolutions (one filter per channel) as direct loops: a GEMM per channel would have one row, and
/// each tap is a run over an output row that the compiler vectorises.
extension Convolution {
    /// Output columns ox whose input column ox·stride + shift lies inside [0, w).
    func validColumns(shift: Int, w: Int, wo: Int) -> Range<Int> {
        let lo = shift >= 0 ? 0 : (-shift + stride - 1) / stride
        let hi = min(wo, w - 1 - shift < 0 ? 0 : (w - 1 - shift) / stride + 1)
        return lo..<max(lo, hi)
    }

    // y (N, C, Ho, Wo) += Σ_taps w[c, ky, kx] · x[c, oy·s − pad + ky, ox·s − pad + kx]; y starts at zero
    func forwardDepthwise(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                          n: Int, h: Int, w: Int, ho: Int, wo: Int) {
        let c = inChannels, k = kernel, p = ho * wo
        for i in 0..<n { for ch in 0..<c {
            let src = x + (i * c + ch) * h * w, dst = y + (i * c + ch) * p
            for ky in 0..<k { for kx in 0..<k {
                let wv = weight[(ch * k + ky) * k + kx]
                let shift = kx - padding
                let cols = validColumns(shift: shift, w: w, wo: wo)
                for oy in 0..<ho {
                    let iy = oy * stride - padding + ky
                    guard iy >= 0 && iy < h else { continue }
                    let row = src + iy * w, out = dst + oy * wo
                    for ox in cols { out[ox] += wv * row[ox * stride + shift] }
                }
            } }
        } }
    }

    // dx (N, C, H, W) += w · dy at each tap; dW += Σ dy · x when x is given
    func backwardDepthwise(_ dx: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>, n: Int, h: Int, w: Int, ho: Int, wo: Int) {
        let c = inChannels, k = kernel, p = ho * wo
        for i in 0..<n { for ch in 0..<c {
            let d = dy + (i * c + ch) * p, dst = dx + (i * c + ch) * h * w
            let src = x.map { $0 + (i * c + ch) * h * w }
            for ky in 0..<k { for kx in 0..<k {
                let wi = (ch * k + ky) * k + kx
                let wv = weight[wi]
                let shift = kx - padding
                let cols = validColumns(shift: shift, w: w, wo: wo)
                var gw: Float = 0
                for oy in 0..<ho {
                    let iy = oy * stride - padding + ky
                    guard iy >= 0 && iy < h else { continue }
                    let drow = d + oy * wo, xrow = dst + iy * w
                    for ox in cols { xrow[ox * stride + shift] += wv * drow[ox] }
                    if let src {
                        let srow = src + iy * w
                        for ox in cols { gw += drow[ox] * srow[ox * stride + shift] }
                    }
                }
                if let dWeight { dWeight[wi] += gw }
            } }
        } }
    }
}
