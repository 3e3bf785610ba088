#!/usr/bin/env python3
"""Gives a structure-only ONNX export (make_onnx_fixtures.py's *.weightless.onnx) real, deterministic weights.

    fill_onnx_weights.py IN.weightless.onnx OUT.onnx [--seed S]

The torchvision fixtures are committed without their initializer data (resnet18 alone would be 45 MB), so the tests
that need real weights (import equality with onnxruntime, packages built and exported from them) fill them here, in
a temporary file, the same way every time: every float initializer whose data was stripped gets values by the role
its first reader gives it, drawn from numpy's PCG64 seeded with S and the initializer's name (so the values do not
depend on the order of the file):

* Conv weight: He-normal (std sqrt(2 / fan_in)) times a per-output-channel scale in [0.5, 1): what a trained batch
  norm folded into the convolution looks like, and what keeps the activations of a residual network near unit size.
* Conv bias: N(0, 0.05). Gemm weight: N(0, 1 / fan_in). Gemm bias: N(0, 0.01).
* BatchNormalization scale U[0.5, 1), bias N(0, 0.05), running mean N(0, 0.05), running variance U[0.8, 1.2).

Needs onnx and numpy (the test virtualenv .build/venv-onnx has both). Prints one line: the filled count and size.
"""
import argparse
import hashlib
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def rng_for(name, seed):
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "little")))


def values(role, dims, rng):
    shape = tuple(int(d) for d in dims)
    n = int(np.prod(shape)) if shape else 1
    if role == "conv.weight":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return w * rng.uniform(0.5, 1.0, size=(shape[0],) + (1,) * (len(shape) - 1))
    if role == "conv.bias":
        return rng.normal(0, 0.05, size=shape)
    if role == "gemm.weight":
        return rng.standard_normal(shape) / np.sqrt(shape[1])
    if role == "gemm.bias":
        return rng.normal(0, 0.01, size=shape)
    if role == "bn.scale":
        return rng.uniform(0.5, 1.0, size=shape)
    if role in ("bn.bias", "bn.mean"):
        return rng.normal(0, 0.05, size=shape)
    if role == "bn.var":
        return rng.uniform(0.8, 1.2, size=shape)
    raise ValueError(f"no rule for {role} {shape} ({n} values)")


def roles(graph):
    out = {}
    names = {
        "Conv": ["", "conv.weight", "conv.bias"],
        "Gemm": ["", "gemm.weight", "gemm.bias"],
        "BatchNormalization": ["", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
    }
    for node in graph.node:
        for i, name in enumerate(node.input):
            role = names.get(node.op_type, [])[i] if i < len(names.get(node.op_type, [])) else ""
            if role and name not in out:
                out[name] = role
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    model = onnx.load(a.input)
    role = roles(model.graph)
    filled = 0
    total = 0
    for t in model.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or t.raw_data or t.float_data:
            continue
        if not t.dims or int(np.prod(t.dims)) == 0:
            continue
        if t.name not in role:
            raise SystemExit(f"fill_onnx_weights: initializer {t.name} has no data and no Conv, Gemm or BatchNormalization reads it")
        array = values(role[t.name], t.dims, rng_for(t.name, a.seed)).astype("<f4")
        t.CopyFrom(numpy_helper.from_array(array, t.name))
        filled += 1
        total += array.size
    onnx.save(model, a.output)
    print(f"filled {filled} initializers, {total} floats, into {a.output}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line naming the failure, non-zero exit
        print(f"fill_onnx_weights: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
