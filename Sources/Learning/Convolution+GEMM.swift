internal import COpenBLAS

/// Convolutions as GEMMs over im2col columns. Ungrouped ones run one sample at a time: the column matrix of
/// one image (C·K·K × P) stays in cache, the GEMM writes the output in its final (N, Co, P) layout, and a 1×1
/// stride-1 convolution needs no column matrix at all (the image is one already). Grouped ones batch the
/// whole minibatch into one (C/g·K·K, N·P) column matrix per group, so one GEMM per group amortises the call.
/// Workspace slots: 0 columns, 1 column gradients / GEMM staging, 2 staging of dy.
extension Convolution {
    // y (N, Co, P) = W (Co, C·K·K) · col_i (C·K·K, P) for each sample i
    func forwardPerSample(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                          n: Int, h: Int, w: Int, ho: Int, wo: Int, workspace: Workspace) {
        let c = inChannels, co = outChannels, p = ho * wo, rows = c * kernel * kernel
        let col = isPointwise ? nil : workspace.buffer(0, count: rows * p)
        for i in 0..<n {
            let xi = x + i * c * h * w
            var b = xi
            if let col {
                im2col(xi, channels: c, h: h, w: w, ho: ho, wo: wo, col: col, ldc: p)
                b = UnsafePointer(col)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(co), Int32(p), Int32(rows), 1,
                        weight, Int32(rows), b, Int32(p), 0, y + i * co * p, Int32(p))
        }
    }

    // dx_i = col2im(Wᵀ · dy_i); dW += dy_i · col_iᵀ when x is given
    func backwardPerSample(_ dx: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>, n: Int, h: Int, w: Int, ho: Int, wo: Int,
                           workspace: Workspace) {
        let c = inChannels, co = outChannels, p = ho * wo, rows = c * kernel * kernel
        let col = isPointwise || dWeight == nil ? nil : workspace.buffer(0, count: rows * p)
        let dcol = isPointwise ? nil : workspace.buffer(1, count: rows * p)
        for i in 0..<n {
            let dyi = dy + i * co * p, dxi = dx + i * c * h * w
            if let dWeight, let x {
                let xi = x + i * c * h * w
                var b = xi
                if let col {
                    im2col(xi, channels: c, h: h, w: w, ho: ho, wo: wo, col: col, ldc: p)
                    b = UnsafePointer(col)
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(co), Int32(rows), Int32(p), 1,
                            dyi, Int32(p), b, Int32(p), 1, dWeight, Int32(rows))
            }
            // dcol_i = Wᵀ · dy_i, scattered back into dx_i (directly dx_i for pointwise).
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(p), Int32(co), 1,
                        weight, Int32(rows), dyi, Int32(p), 0, dcol ?? dxi, Int32(p))
            if let dcol { col2im(dcol, channels: c, h: h, w: w, ho: ho, wo: wo, ldc: p, dx: dxi) }
        }
    }

    // per group g: out (Og, N·P) = W_g (Og, Cg·K·K) · col_g (Cg·K·K, N·P), then (Og, N·P) -> y (N, Co, P)
    func forwardGrouped(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                        n: Int, h: Int, w: Int, ho: Int, wo: Int, workspace: Workspace) {
        let c = inChannels, p = ho * wo, np = n * p
        let cg = c / groups, og = outChannels / groups, rows = cg * kernel * kernel
        let col = workspace.buffer(0, count: rows * np)
        let out = workspace.buffer(1, count: og * np)
        for g in 0..<groups {
            for i in 0..<n {
                im2col(x + (i * c + g * cg) * h * w, channels: cg, h: h, w: w, ho: ho, wo: wo, col: col + i * p, ldc: np)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(og), Int32(np), Int32(rows), 1,
                        weight + g * og * rows, Int32(rows), col, Int32(np), 0, out, Int32(np))
            for o in 0..<og { for i in 0..<n {
                (y + (i * outChannels + g * og + o) * p).update(from: out + o * np + i * p, count: p)
            } }
        }
    }

    // per group g: dout (Og, N·P) from dy; dW_g += dout · col_gᵀ; dx += col2im(W_gᵀ · dout)
    func backwardGrouped(_ dx: UnsafeMutablePointer<Float>, _ dWeight: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>, n: Int, h: Int, w: Int, ho: Int, wo: Int,
                         workspace: Workspace) {
        let c = inChannels, p = ho * wo, np = n * p
        let cg = c / groups, og = outChannels / groups, rows = cg * kernel * kernel
        let col = workspace.buffer(0, count: rows * np)        // columns, then their gradient
        let dout = workspace.buffer(2, count: og * np)
        for g in 0..<groups {
            for o in 0..<og { for i in 0..<n {
                (dout + o * np + i * p).update(from: dy + (i * outChannels + g * og + o) * p, count: p)
            } }
            if let dWeight, let x {
                for i in 0..<n {
                    im2col(x + (i * c + g * cg) * h * w, channels: cg, h: h, w: w, ho: ho, wo: wo, col: col + i * p, ldc: np)
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(og), Int32(rows), Int32(np), 1,
                            dout, Int32(np), col, Int32(np), 1, dWeight + g * og * rows, Int32(rows))
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(np), Int32(og), 1,
                        weight + g * og * rows, Int32(rows), dout, Int32(np), 0, col, Int32(np))
            for i in 0..<n {
                col2im(col + i * p, channels: cg, h: h, w: w, ho: ho, wo: wo, ldc: np, dx: dx + (i * c + g * cg) * h * w)
            }
        }
    }
}

/// OpenBLAS threading for this engine's small matrices: one thread per call. Its worker threads spin while
/// waiting, which on a 2-core device (or beside other work) costs more than it saves; callers that run
/// several models (or several inferences of one) at once parallelise across them instead.
enum BLAS {
    static let configured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()
}
