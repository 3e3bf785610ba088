import ElasticModel
import Learning
import Testing

struct ElasticNetworkTests {
    static func randomised(_ arch: Architecture, sparsities: [Double] = [0, 0.25, 0.5, 0.75]) throws -> ElasticNetwork {
        let base = arch.makeModel(seed: 1)
        let positions = try ElasticNetwork.positions(of: base, sparsities: sparsities)
        let net = try ElasticNetwork(architecture: arch, positions: positions, adapterKind: .parallel)
        for (p, blocks) in net.variantBlocks.enumerated() {
            for v in blocks.indices.dropFirst() { try FilterPruning.initialise(blocks[v], from: blocks[0], store: net.model.store) }
            _ = p
        }
        return net
    }

    @Test(arguments: [Architecture.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2]),
                      Architecture.mobileNetV2(stemWidth: 8, stages: [.init(channels: 8, blocks: 1, stride: 1),
                                                                      .init(channels: 12, blocks: 2, stride: 2),
                                                                      .init(channels: 16, blocks: 2, stride: 2)], expansion: 3)])
    func randomCombinationsComposeAndRun(arch: Architecture) throws {
        let net = try Self.randomised(arch)
        let expected = arch.family == .resnet ? 5 * 5 * 5 * 5 * 5 : 5 * 4 * 5 * 4 * 5
        #expect(net.combinationCount == expected)
        var rng = SeededRandom(seed: 9)
        var x = Tensor(zeros: [2, 1, 28, 28])
        for i in x.data.indices { x.data[i] = rng.normal() }
        for _ in 0..<25 {
            net.compose(net.variantBlocks.map { Int(rng.next() % UInt64($0.count)) })
            let y = net.model.forward(x, training: false)
            #expect(y.shape == [2, 10])
            #expect(y.data.allSatisfy { $0.isFinite }, "\(net.choiceIDs)")
        }
    }

    /// Pruning at sparsity 0 through the pruning path copies the block exactly: outputs are bit-identical.
    @Test func pruningAtZeroSparsityIsExact() throws {
        let arch = Architecture.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2])
        let base = arch.makeModel(seed: 1)
        var positions = try ElasticNetwork.positions(of: base, sparsities: [0])
        for p in positions.indices {
            positions[p].variants.append(VariantSpec(id: "full", sparsity: 0, hiddenChannels: positions[p].hiddenChannels, skip: nil))
        }
        let net = try ElasticNetwork(architecture: arch, positions: positions, adapterKind: .parallel)
        var rng = SeededRandom(seed: 2)
        // Give BN statistics non-trivial values so the channel copy is exercised.
        for e in net.model.store.entries where e.isBuffer { try net.model.store.set(e.name, (0..<e.count).map { _ in 0.5 + abs(rng.normal()) }) }
        for blocks in net.variantBlocks { try FilterPruning.initialise(blocks[1], from: blocks[0], store: net.model.store) }
        var x = Tensor(zeros: [3, 1, 28, 28])
        for i in x.data.indices { x.data[i] = rng.normal() }
        net.compose([0, 0, 0, 0, 0])
        let a = net.model.forward(x, training: false)
        net.compose([1, 1, 1, 1, 1])
        let b = net.model.forward(x, training: false)
        #expect(a == b)
    }

    /// L1 selection keeps exactly the filters a brute-force sort keeps.
    @Test func keptFiltersAreTheLargestL1() {
        var rng = SeededRandom(seed: 4)
        for _ in 0..<50 {
            let filters = 2 + Int(rng.next() % 14), per = 1 + Int(rng.next() % 9)
            let w = (0..<(filters * per)).map { _ in rng.normal() }
            let keep = 1 + Int(rng.next() % UInt64(filters))
            let norms = (0..<filters).map { f in (0..<per).map { abs(w[f * per + $0]) }.reduce(0, +) }
            let brute = Array((0..<filters).sorted { norms[$0] > norms[$1] }.prefix(keep)).sorted()
            #expect(FilterPruning.keptFilters(weights: w, filters: filters, keep: keep) == brute)
        }
    }

    /// Adapters are shared per position: training the adapter of one variant changes every variant's output.
    @Test func adapterIsSharedByAllVariantsOfAPosition() throws {
        let net = try Self.randomised(.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2]))
        for blocks in net.variantBlocks { #expect(blocks.allSatisfy { $0.adapter === blocks[0].adapter }) }
        #expect(net.adapterTensorNames(position: 2) == ["blocks.2.adapter.conv.weight"])
    }

    @Test func compositionByIdsNamesTheBadPosition() throws {
        let net = try Self.randomised(.resnet(widths: [8, 16, 32], blocksPerStage: [1, 2, 2]))
        try net.compose(ids: ["s0", "s25", "skip", "s75", "s50"])
        #expect(net.choice == [0, 1, 4, 3, 2])
        #expect(throws: PackageError.invalidCombination("blocks.1 has no variant s99")) { try net.compose(ids: ["s0", "s99", "s0", "s0", "s0"]) }
        #expect(throws: PackageError.self) { try net.compose(ids: ["s0"]) }
    }
}
