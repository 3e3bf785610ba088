#!/usr/bin/python3
"""PyTorch peer of FleetAdapt's 5-block ResNet, for `fleetadapt bench train`.

Usage: /usr/bin/python3 deploy/tools/torch_peer.py WEIGHTS.safetensors [--threads N] [--rss-only]
WEIGHTS holds the Swift model's parameters and buffers (PyTorch names), an `input` batch (64, 1, 28, 28)
and the Swift model's eval-mode `logits` for it. Prints JSON: max |logit difference| after loading the
weights into the identical PyTorch network, and PyTorch CPU timings (median ms, N intra-op threads, default 1)
of a training step at batch 64, an adapter-only step at batch 64 (a zero-initialised 1×1 adapter beside each
block; every other parameter has requires_grad=False, batch norms normalise with batch statistics and update
their running ones; entropy loss, Adam), and inference at batch 64 and 1.
With --rss-only (run it in a fresh process) it runs only adapter-only steps and prints the process's peak
RSS (ru_maxrss) in KiB. Needs Debian's python3-torch.
"""
import json, resource, struct, sys, time

import numpy as np
import torch
import torch.nn as nn


def read_safetensors(path):
    """Independent reader of the format (8-byte LE header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").copy().reshape(info["shape"]))
    return out


class BasicBlock(nn.Module):
    def __init__(self, c, o, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.shortcut = nn.Sequential()
        if stride != 1 or c != o:
            self.shortcut = nn.Sequential(nn.Conv2d(c, o, 1, stride, bias=False), nn.BatchNorm2d(o))

        self.adapter = None

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.shortcut(x)
        if self.adapter is not None:
            y = y + self.adapter(x)
        return torch.relu(y)


class ResNet5(nn.Module):
    """stem conv3×3 1→16-BN-ReLU; blocks 16→16 s1, 16→32 s2, 32→32 s1, 32→64 s2, 64→64 s1; GAP; linear 64→10."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.spec = [(16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)]
        self.blocks = nn.ModuleList([BasicBlock(c, o, s) for c, o, s in self.spec])
        self.head = nn.Linear(64, 10)

    def attach_adapters(self):
        """The engine's `parallel` adapters: a 1×1 convolution (stride of the block, no bias) from each block's
        input to its output shape, zero-initialised; returns their parameters."""
        params = []
        for b, (c, o, s) in zip(self.blocks, self.spec):
            b.adapter = nn.Conv2d(c, o, 1, s, bias=False)
            nn.init.zeros_(b.adapter.weight)
            params.append(b.adapter.weight)
        return params

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean(dim=(2, 3)))


def median_ms(fn, runs=20):
    for _ in range(3):
        fn()
    t = []
    for _ in range(runs):
        s = time.perf_counter()
        fn()
        t.append((time.perf_counter() - s) * 1000)
    return sorted(t)[len(t) // 2]


def adapter_only(model, x):
    """Freezes `model`, attaches adapters and returns one adapter-only TENT step (entropy of the predictions)."""
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.attach_adapters(), lr=1e-3)
    model.train()

    def step():
        opt.zero_grad()
        p = torch.softmax(model(x), dim=1)
        (-(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean()).backward()
        opt.step()
    return step


def main():
    args = sys.argv[1:]
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 1
    torch.set_num_threads(threads)
    tensors = read_safetensors(args[0])
    x, swift_logits = tensors.pop("input"), tensors.pop("logits")
    model = ResNet5()
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    if "--rss-only" in args:
        step = adapter_only(model, x)
        for _ in range(10):
            step()
        print(json.dumps({"adapter_peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          "torch": torch.__version__, "threads": torch.get_num_threads()}))
        return
    model.eval()
    with torch.no_grad():
        diff = (model(x) - swift_logits).abs().max().item()
    labels = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()

    train = median_ms(step)
    model.eval()
    with torch.no_grad():
        infer64 = median_ms(lambda: model(x))
        infer1 = median_ms(lambda: model(x[:1]))
    adapted = ResNet5()
    adapted.load_state_dict(tensors, strict=False)
    adapter = median_ms(adapter_only(adapted, x))
    print(json.dumps({"max_abs_logit_diff": diff, "train_ms": train, "adapter_ms": adapter, "infer64_ms": infer64,
                      "infer1_ms": infer1, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
