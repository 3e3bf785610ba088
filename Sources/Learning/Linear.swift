internal import COpenBLAS

/// y = x·Wᵀ + b with W (out, in): ONNX's Gemm with transB = 1, through `cblas_sgemm`. Stateless.
public struct Dense: Sendable, Equatable {
    public let inFeatures: Int, outFeatures: Int

    public init(in inFeatures: Int, out outFeatures: Int) { self.inFeatures = inFeatures; self.outFeatures = outFeatures }

    // x (N, in), weight (out, in), bias (out) -> y (N, out)
    func forward(_ x: Tensor, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) -> Tensor {
        let n = x.shape[0]
        precondition(x.perSample == inFeatures, "dense expects \(inFeatures) features, got \(x.shape)")
        var y = [Float](repeating: 0, count: n * outFeatures)
        if let bias { for i in 0..<n { for o in 0..<outFeatures { y[i * outFeatures + o] = bias[o] } } }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(outFeatures), Int32(inFeatures), 1,
                    x.data, Int32(inFeatures), weight, Int32(inFeatures), 1, &y, Int32(outFeatures))
        return Tensor(shape: [n, outFeatures], data: y)
    }

    // dy (N, out) -> dx (N, in) shaped like the input; dW += dyᵀ·x when x and dW are given, db += Σ dy
    func backward(_ dy: Tensor, input: Tensor?, inputShape: [Int], weight: UnsafePointer<Float>,
                  dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?) -> Tensor {
        let n = dy.shape[0]
        if let input, let dWeight {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(n), 1,
                        dy.data, Int32(outFeatures), input.data, Int32(inFeatures), 1, dWeight, Int32(inFeatures))
        }
        if let dBias { for i in 0..<n { for o in 0..<outFeatures { dBias[o] += dy.data[i * outFeatures + o] } } }
        var dx = [Float](repeating: 0, count: n * inFeatures)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(inFeatures), Int32(outFeatures), 1,
                    dy.data, Int32(outFeatures), weight, Int32(inFeatures), 0, &dx, Int32(inFeatures))
        return Tensor(shape: inputShape, data: dx)
    }
}

/// A fully connected layer: its `Dense` shape and its weight and bias in the parameter store.
public final class Linear: Layer {
    public let dense: Dense
    let store: ParameterStore
    public let weightID: Int, biasID: Int
    public var inFeatures: Int { dense.inFeatures }
    public var outFeatures: Int { dense.outFeatures }

    public init(_ store: ParameterStore, name: String, in inFeatures: Int, out outFeatures: Int, rng: inout SeededRandom) {
        dense = Dense(in: inFeatures, out: outFeatures)
        self.store = store
        let bound = 1 / Float(inFeatures).squareRoot()
        weightID = store.add(name + ".weight", shape: [outFeatures, inFeatures], initial: (0..<(inFeatures * outFeatures)).map { _ in rng.uniform(-bound, bound) })
        biasID = store.add(name + ".bias", shape: [outFeatures], initial: (0..<outFeatures).map { _ in rng.uniform(-bound, bound) })
    }

    // x (N, in) -> y (N, out)
    public func forward(_ x: Tensor, training: Bool, tape: Tape?) -> Tensor {
        tape?.push(self, .input(store.isTrainable(weightID) ? x : nil, shape: x.shape))
        return store.values.withUnsafeBufferPointer { v in
            dense.forward(x, weight: v.baseAddress! + store.entries[weightID].offset, bias: v.baseAddress! + store.entries[biasID].offset)
        }
    }

    public func backward(_ dy: Tensor, tape: Tape) -> Tensor {
        guard case .input(let input, let shape) = tape.pop(self) else { preconditionFailure("linear: foreign tape record") }
        let w = store.entries[weightID].offset, b = store.entries[biasID].offset
        let trainW = store.isTrainable(weightID), trainB = store.isTrainable(biasID)
        let values = store.values
        return values.withUnsafeBufferPointer { v in store.grads.withUnsafeMutableBufferPointer { g in
            dense.backward(dy, input: input, inputShape: shape, weight: v.baseAddress! + w,
                           dWeight: trainW ? g.baseAddress! + w : nil, dBias: trainB ? g.baseAddress! + b : nil)
        } }
    }
}
