#!/usr/bin/python3
"""ONNX fixtures for FleetAdapt's importer (issue 12), written to Tests/ONNXTests/Fixtures.

Usage: /usr/bin/python3 deploy/tools/make_onnx_fixtures.py [OUT_DIR]
Needs Debian's python3-torch, python3-torchvision, python3-onnx and dataset-fashion-mnist; no network, no
pretrained weights (every torchvision model is random-init, `weights=None`). Deterministic seeds; CI never runs it,
the committed outputs suffice.

Writes, for opset 14 with a dynamic batch axis named `batch`, each model exported twice: `*.preserve.onnx`
(`training=TrainingMode.PRESERVE` on the eval-mode model: BatchNormalization kept, training_mode=0) and
`*.eval.onnx` (plain eval export: PyTorch folds every BN into its Conv).
* trained, full weights: `se_resnet` (residual CNN with squeeze-and-excitation) and `mobilenet_v2_tiny`
  (width-reduced inverted residuals, ReLU6), trained briefly on Fashion-MNIST as RGB 32x32; reference inputs and
  PyTorch's eval-mode logits in `<model>.reference.safetensors` (tensors `input` (8,3,32,32), `logits` (8,10),
  `labels` (8,) as F32).
* weightless: torchvision resnet18, resnet50, mobilenet_v2, mobilenet_v3_small at 3x32x32, every float initializer's
  data stripped (dims kept), so the files are a few KB; the loader reads them with weights absent.
* refused: an unsupported op (LeakyRelu), a dilation-2 conv, a float64 model, opset 11, a truncated file.
* `fixtures.json`: per file, its kind, op counts, input/output names, and the shape of every tensor as ONNX's own
  shape inference gives it (the batch axis as "batch"), and for refused files the node and op the error must name.
"""
import gzip, json, os, struct, sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import shape_inference
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics on [0, 1], the same for the three replicated channels
OPSET = 14
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "Tests", "ONNXTests", "Fixtures")


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    ndim = b[3]
    dims = struct.unpack(">" + "I" * ndim, b[4:4 + 4 * ndim])
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion(split):
    prefix = "train" if split == "train" else "t10k"
    images = idx(f"{FASHION}/{prefix}-images-idx3-ubyte.gz")
    labels = idx(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz")
    return images, labels


def preprocess(images):
    """uint8 (N, 28, 28) -> float32 (N, 3, 32, 32): zero-pad 2 px each side, replicate gray to RGB, (x/255-mean)/std."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = F.pad(x, (2, 2, 2, 2))
    x = x.unsqueeze(1).repeat(1, 3, 1, 1)
    return (x - MEAN) / STD


class SEBlock(nn.Module):
    """A basic residual block with squeeze-and-excitation before the residual add."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se = SqueezeExcitation(cout, max(4, cout // 4))  # AdaptiveAvgPool(1), 1x1 conv, ReLU, 1x1 conv, Sigmoid, Mul
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(y + (x if self.down is None else self.down(x)))


class SEResNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)  # 32 -> 16
        self.layer1 = SEBlock(16, 16, 1)
        self.layer2 = SEBlock(16, 32, 2)   # 16 -> 8
        self.layer3 = SEBlock(32, 48, 2)   # 8 -> 4
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.pool(self.stem(x)))))
        return self.fc(torch.flatten(self.avg(x), 1))


class MobileNetV2Tiny(nn.Module):
    """torchvision's own InvertedResidual blocks at small widths; stride-2 stages reach 1x1 at 32x32 input."""

    def __init__(self, classes=10):
        super().__init__()
        layers = [Conv2dNormActivation(3, 16, stride=2, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)]  # 16x16
        # (input, output, stride, expand ratio)
        for cin, cout, s, t in [(16, 8, 1, 1), (8, 16, 2, 4), (16, 16, 1, 4), (16, 24, 2, 4), (24, 24, 1, 4),
                                (24, 32, 2, 4), (32, 32, 1, 4), (32, 48, 2, 4)]:  # 16 -> 8 -> 4 -> 2 -> 1
            layers.append(InvertedResidual(cin, cout, s, t))
        layers.append(Conv2dNormActivation(48, 128, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                           activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def train(model, x, y, steps, batch=64, lr=3e-3):
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        i = torch.randint(0, x.shape[0], (batch,), generator=g)
        loss = F.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss)


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def export(model, path, training, opset=OPSET, dtype=torch.float32, dynamic_spatial=False):
    model.eval()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if dynamic_spatial:
        axes["input"].update({2: "height", 3: "width"})
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32, dtype=dtype), path, opset_version=opset,
                      input_names=["input"], output_names=["logits"], dynamic_axes=axes, training=training,
                      do_constant_folding=True)


def strip_weights(path):
    """Float initializers keep name and dims, lose their data: the op/attribute/shape structure stays testable."""
    m = onnx.load(path)
    stripped = 0
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            stripped += len(t.raw_data) + 4 * len(t.float_data)
            t.ClearField("raw_data")
            t.ClearField("float_data")
    onnx.save(m, path)
    return stripped


def describe(path):
    m = onnx.load(path)
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    inferred = shape_inference.infer_shapes(m)

    def dims(vi):
        out = []
        for d in vi.type.tensor_type.shape.dim:
            out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        return out

    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            shapes[vi.name] = dims(vi)
    inits = {t.name for t in m.graph.initializer}
    params = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    return {
        "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
        "irVersion": m.ir_version,
        "producer": f"{m.producer_name} {m.producer_version}",
        "nodes": len(m.graph.node),
        "opCounts": counts,
        "initializers": len(inits),
        "parameters": params,
        "inputs": [i.name for i in m.graph.input if i.name not in inits],
        "outputs": [o.name for o in m.graph.output],
        "shapes": shapes,
    }


def first_node(path, pred):
    m = onnx.load(path)
    for n in m.graph.node:
        if pred(n):
            return n.name, n.op_type
    raise SystemExit(f"{path}: no node matches")


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    manifest = {"generator": f"deploy/tools/make_onnx_fixtures.py, torch {torch.__version__}, "
                             f"torchvision {torchvision.__version__}, onnx {onnx.__version__}",
                "preprocessing": {"input": [3, 32, 32], "pad": 2, "mean": [MEAN] * 3, "std": [STD] * 3,
                                  "source": "Fashion-MNIST 28x28 gray, zero-padded to 32x32, replicated to RGB"},
                "files": {}}
    files = manifest["files"]

    images, labels = fashion("train")
    x, y = preprocess(images[:20000]), torch.from_numpy(labels[:20000].astype(np.int64))
    timages, tlabels = fashion("test")
    tx, ty = preprocess(timages[:2000]), torch.from_numpy(tlabels[:2000].astype(np.int64))

    for name, model, steps in [("se_resnet", SEResNet(), 150), ("mobilenet_v2_tiny", MobileNetV2Tiny(), 200)]:
        loss = train(model, x, y, steps)
        acc = accuracy(model, tx, ty)
        ref_x = tx[:8]
        with torch.no_grad():
            logits = model(ref_x)
        write_safetensors(os.path.join(OUT, f"{name}.reference.safetensors"),
                          {"input": ref_x, "logits": logits, "labels": ty[:8].float()})
        for mode, training in [("preserve", torch.onnx.TrainingMode.PRESERVE), ("eval", torch.onnx.TrainingMode.EVAL)]:
            fname = f"{name}.{mode}.onnx"
            export(model, os.path.join(OUT, fname), training)
            d = describe(os.path.join(OUT, fname))
            d.update({"kind": "trained", "mode": mode, "reference": f"{name}.reference.safetensors",
                      "testAccuracy": acc, "finalLoss": loss, "trainSteps": steps,
                      "torchOutputShape": list(logits.shape)})
            files[fname] = d
        print(f"{name}: params {sum(p.numel() for p in model.parameters())}, loss {loss:.3f}, "
              f"test accuracy {acc:.3f} on 2000", flush=True)

    zoo = [("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50),
           ("mobilenet_v2", torchvision.models.mobilenet_v2), ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small)]
    for name, ctor in zoo:
        model = ctor(weights=None).eval()
        with torch.no_grad():
            out = model(torch.zeros(2, 3, 32, 32))
        for mode, training in [("preserve", torch.onnx.TrainingMode.PRESERVE), ("eval", torch.onnx.TrainingMode.EVAL)]:
            fname = f"{name}.{mode}.weightless.onnx"
            path = os.path.join(OUT, fname)
            export(model, path, training)
            d = describe(path)
            d.update({"kind": "weightless", "mode": mode, "strippedBytes": strip_weights(path),
                      "torchOutputShape": ["batch", out.shape[1]]})
            files[fname] = d
            print(f"{fname}: {d['nodes']} nodes {d['opCounts']}", flush=True)

    # Refused cases: each names the node and op the loader's error must name.
    class Leaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 1, 1)
            self.act = nn.LeakyReLU(0.1)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.act(self.conv(x)), 1), 1))

    class Dilated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 1, 2, dilation=2)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1), 1))

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 1, 1)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1), 1))

    refused = [
        ("refused_leakyrelu.onnx", Leaky(), {}, lambda n: n.op_type == "LeakyRelu", "unsupported op"),
        ("refused_dilation2.onnx", Dilated(), {}, lambda n: n.op_type == "Conv", "dilations"),
        ("refused_float64.onnx", Small().double(), {"dtype": torch.float64}, None, "data type"),
        ("refused_opset11.onnx", Small(), {"opset": 11}, None, "opset"),
    ]
    for fname, model, kw, pred, reason in refused:
        path = os.path.join(OUT, fname)
        export(model, path, torch.onnx.TrainingMode.EVAL, **kw)
        entry = {"kind": "refused", "reason": reason}
        if pred is not None:
            entry["node"], entry["op"] = first_node(path, pred)
        files[fname] = entry
    # Accepted only with the input spec: height and width are symbolic in the file.
    path = os.path.join(OUT, "dynamic_spatial.onnx")
    export(Small(), path, torch.onnx.TrainingMode.EVAL, dynamic_spatial=True)
    files["dynamic_spatial.onnx"] = {"kind": "needs-spec", "opCounts": describe(path)["opCounts"]}
    with open(os.path.join(OUT, "se_resnet.eval.onnx"), "rb") as f:
        blob = f.read()
    with open(os.path.join(OUT, "refused_truncated.onnx"), "wb") as f:
        f.write(blob[:len(blob) // 2])
    files["refused_truncated.onnx"] = {"kind": "refused", "reason": "truncated", "originalBytes": len(blob)}

    for fname in sorted(os.listdir(OUT)):
        if fname in files:
            files[fname]["bytes"] = os.path.getsize(os.path.join(OUT, fname))
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
