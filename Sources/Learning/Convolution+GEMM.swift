internal import COpenBLAS

/// Convolutions as GEMMs over im2col columns. Ungrouped ones run a few samples at a time: the column matrix of
/// `chunk` images (C·K·K × chunk·P) stays in cache while one GEMM covers enough columns to run at speed (a 7×7
/// feature map alone gives a GEMM only 49 wide), and a chunk of one image writes the output in its final
/// (N, Co, P) layout (a 1×1 stride-1 convolution then needs no column matrix at all: the image is one already).
/// `threads` lanes split the samples, each with its own scratch and (backward) its own weight-gradient sum.
/// Grouped ones batch the whole minibatch into one (C/g·K·K, N·P) column matrix per group, so one GEMM per group
/// amortises the call.
/// Workspace slots: 4·lane + 0 columns, + 1 column gradients / GEMM output, + 2 staging of dy, + 3 the lane's dW.
extension Convolution {
    /// Columns one ungrouped GEMM should cover: samples are chunked until P·chunk reaches this.
    static let gemmColumns = 512

    /// Samples per GEMM for P output positions each.
    func chunk(n: Int, p: Int) -> Int { max(1, min(n, Self.gemmColumns / p)) }

    // y (N, Co, P) = activation(W (Co, C·K·K) · col (C·K·K, chunk·P) + bias), chunk by chunk
    func forwardPerSample(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>?, clamp: (Float, Float)?, n: Int, h: Int, w: Int, ho: Int, wo: Int,
                          workspace: Workspace, threads: Int) {
        let c = inChannels, co = outChannels, p = ho * wo, rows = c * kernel * kernel, hw = h * w
        let chunk = chunk(n: n, p: p), lanes = Lanes.count(threads, items: n)
        // Per lane: the chunk's columns (none when a 1×1 image is its own), and the GEMM's (Co, chunk·P) output.
        let cols: [Address?] = (0..<lanes).map {
            isPointwise && chunk == 1 ? nil : Address(workspace.buffer(4 * $0, count: rows * chunk * p))
        }
        let outs: [Address?] = (0..<lanes).map { chunk == 1 ? nil : Address(workspace.buffer(4 * $0 + 1, count: co * chunk * p)) }
        let (ya, xa, wa, ba) = (Address(y), Address(x), Address(weight), bias.map { Address($0) })
        Lanes.run(n, lanes: lanes) { lane, samples in
            let y = ya.mutable, x = xa.pointer
            var start = samples.lowerBound
            while start < samples.upperBound {
                let m = min(chunk, samples.upperBound - start), ld = m * p
                var b = x + start * c * hw
                if let col = cols[lane]?.mutable {
                    for j in 0..<m {
                        im2col(x + (start + j) * c * hw, channels: c, h: h, w: w, ho: ho, wo: wo, col: col + j * p, ldc: ld)
                    }
                    b = UnsafePointer(col)
                }
                if m > 1, let out = outs[lane]?.mutable {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(co), Int32(ld), Int32(rows), 1,
                                wa.pointer, Int32(rows), b, Int32(ld), 0, out, Int32(ld))
                    for j in 0..<m { for o in 0..<co {
                        (y + ((start + j) * co + o) * p).update(from: out + o * ld + j * p, count: p)
                    } }
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(co), Int32(p), Int32(rows), 1,
                                wa.pointer, Int32(rows), b, Int32(p), 0, y + start * co * p, Int32(p))
                }
                epilogue(y, bias: ba?.pointer, clamp: clamp, samples: start..<(start + m), p: p)
                start += m
            }
        }
    }

    // dx_i = col2im(Wᵀ · dy) when dx is given; dW += dy · colᵀ when x is given; chunk by chunk
    func backwardPerSample(_ dx: UnsafeMutablePointer<Float>?, _ dWeight: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>, n: Int, h: Int, w: Int, ho: Int, wo: Int,
                           workspace: Workspace, threads: Int) {
        let c = inChannels, co = outChannels, p = ho * wo, rows = c * kernel * kernel, hw = h * w
        let dWeight = x == nil ? nil : dWeight
        guard dx != nil || dWeight != nil else { return }
        let chunk = chunk(n: n, p: p), lanes = Lanes.count(threads, items: n)
        let direct = isPointwise && chunk == 1
        let cols: [Address?] = (0..<lanes).map {
            dWeight == nil || direct ? nil : Address(workspace.buffer(4 * $0, count: rows * chunk * p))
        }
        let dcols: [Address?] = (0..<lanes).map {
            dx == nil || direct ? nil : Address(workspace.buffer(4 * $0 + 1, count: rows * chunk * p))
        }
        let douts: [Address?] = (0..<lanes).map { chunk == 1 ? nil : Address(workspace.buffer(4 * $0 + 2, count: co * chunk * p)) }
        // Lane 0 accumulates into dW itself; the others into their own zeroed sums, added after.
        let dws: [Address?] = (0..<lanes).map { lane in
            guard let dWeight else { return nil }
            guard lane > 0 else { return Address(dWeight) }
            let own = workspace.buffer(4 * lane + 3, count: co * rows)
            own.update(repeating: 0, count: co * rows)
            return Address(own)
        }
        let (dya, wa, xa, dxa) = (Address(dy), Address(weight), x.map { Address($0) }, dx.map { Address($0) })
        Lanes.run(n, lanes: lanes) { lane, samples in
            let dy = dya.pointer
            var start = samples.lowerBound
            while start < samples.upperBound {
                let m = min(chunk, samples.upperBound - start), ld = m * p
                // d: dy of the chunk as (Co, m·P); for one sample, dy_i itself.
                var d = dy + start * co * p
                if m > 1, let dout = douts[lane]?.mutable {
                    for j in 0..<m { for o in 0..<co {
                        (dout + o * ld + j * p).update(from: dy + ((start + j) * co + o) * p, count: p)
                    } }
                    d = UnsafePointer(dout)
                }
                if let dW = dws[lane]?.mutable, let x = xa?.pointer {
                    var b = x + start * c * hw
                    if let col = cols[lane]?.mutable {
                        for j in 0..<m {
                            im2col(x + (start + j) * c * hw, channels: c, h: h, w: w, ho: ho, wo: wo, col: col + j * p, ldc: ld)
                        }
                        b = UnsafePointer(col)
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(co), Int32(rows), Int32(ld), 1,
                                d, Int32(ld), b, Int32(ld), 1, dW, Int32(rows))
                }
                if let dx = dxa?.mutable {
                    // dcol = Wᵀ · d, scattered back into each dx_i (written directly for a pointwise sample).
                    if let dcol = dcols[lane]?.mutable {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(ld), Int32(co), 1,
                                    wa.pointer, Int32(rows), d, Int32(ld), 0, dcol, Int32(ld))
                        for j in 0..<m {
                            col2im(dcol + j * p, channels: c, h: h, w: w, ho: ho, wo: wo, ldc: ld, dx: dx + (start + j) * c * hw)
                        }
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(p), Int32(co), 1,
                                    wa.pointer, Int32(rows), d, Int32(p), 0, dx + start * c * hw, Int32(p))
                    }
                }
                start += m
            }
        }
        if let dWeight {
            for lane in 1..<lanes { cblas_saxpy(Int32(co * rows), 1, dws[lane]!.pointer, 1, dWeight, 1) }
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

/// Which OpenBLAS kernels this process runs, for benchmarks and logs to say (OpenBLAS picks them at load time
/// from the CPU, or from OPENBLAS_CORETYPE when set; the engine never overrides that).
public enum BLASInfo {
    /// OpenBLAS's name of its core type, e.g. "Haswell" or "Cooperlake".
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
}
