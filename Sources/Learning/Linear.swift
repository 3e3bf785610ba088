internal import COpenBLAS

/// y = x·Wᵀ + b with W (out, in), through `cblas_sgemm`.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    let store: ParameterStore
    public let weightID: Int, biasID: Int
    var input: Tensor?

    public init(_ store: ParameterStore, name: String, in inFeatures: Int, out outFeatures: Int, rng: inout SeededRandom) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.store = store
        let bound = 1 / Float(inFeatures).squareRoot()
        weightID = store.add(name + ".weight", shape: [outFeatures, inFeatures], initial: (0..<(inFeatures * outFeatures)).map { _ in rng.uniform(-bound, bound) })
        biasID = store.add(name + ".bias", shape: [outFeatures], initial: (0..<outFeatures).map { _ in rng.uniform(-bound, bound) })
    }

    public var savedFloats: Int { input?.count ?? 0 }

    // x (N, in) -> y (N, out)
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let n = x.shape[0]
        input = training && store.isTrainable(weightID) ? x : nil
        var y = [Float](repeating: 0, count: n * outFeatures)
        let b = store.entries[biasID].offset
        for i in 0..<n { for o in 0..<outFeatures { y[i * outFeatures + o] = store.values[b + o] } }
        let w = store.entries[weightID].offset
        store.values.withUnsafeBufferPointer { wp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outFeatures), Int32(inFeatures), 1,
                        x.data, Int32(inFeatures), wp.baseAddress! + w, Int32(inFeatures), 1, &y, Int32(outFeatures))
        }
        return Tensor(shape: [n, outFeatures], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let n = dy.shape[0]
        let w = store.entries[weightID].offset
        if let input {
            store.grads.withUnsafeMutableBufferPointer { gp in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(n), 1,
                            dy.data, Int32(outFeatures), input.data, Int32(inFeatures), 1, gp.baseAddress! + w, Int32(inFeatures))
            }
        }
        if store.isTrainable(biasID) {
            let b = store.entries[biasID].offset
            for i in 0..<n { for o in 0..<outFeatures { store.grads[b + o] += dy.data[i * outFeatures + o] } }
        }
        var dx = [Float](repeating: 0, count: n * inFeatures)
        store.values.withUnsafeBufferPointer { wp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(inFeatures), Int32(outFeatures), 1,
                        dy.data, Int32(outFeatures), wp.baseAddress! + w, Int32(inFeatures), 0, &dx, Int32(inFeatures))
        }
        return Tensor(shape: [n, inFeatures], data: dx)
    }
}
