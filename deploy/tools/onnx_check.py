#!/usr/bin/env python3
"""Checks an exported ONNX model with the stock tools and runs it in onnxruntime.

    onnx_check.py MODEL [--then MODEL2] --input IN.f32 --shape N,C,H,W --output OUT.f32 [--repeat R]

IN.f32 holds float32 little-endian values of the given shape. The model passes onnx.checker at full check
(full_check=True, which also runs strict shape inference); then onnxruntime (CPU) runs it on the input, and, with
--then, runs MODEL2 on MODEL's output (a split export: device part, then edge part). The last output is written to
OUT.f32 (float32 little-endian). One JSON line on stdout: the opset and IR version, the metadata, the output shape
and, with --repeat, the median latency in ms of R runs at this batch size.
Needs onnx, onnxruntime and numpy: python3 -m venv .build/venv-onnx && .build/venv-onnx/bin/pip install onnxruntime onnx numpy
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort


def session(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return model, ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--then")
    p.add_argument("--input", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--repeat", type=int, default=0)
    a = p.parse_args()
    shape = [int(d) for d in a.shape.split(",")]
    x = np.fromfile(a.input, dtype="<f4").reshape(shape)
    stages = [session(a.model)] + ([session(a.then)] if a.then else [])

    def run(value):
        for _, s in stages:
            value = s.run(None, {s.get_inputs()[0].name: value})[0]
        return value

    y = run(x)
    y.astype("<f4").tofile(a.output)
    model = stages[0][0]
    report = {
        "checker": "full_check passed",
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "inputs": [i.name for i in stages[0][1].get_inputs()],
        "outputs": [o.name for o in stages[-1][1].get_outputs()],
        "input_dims": [d.dim_param or str(d.dim_value) for d in model.graph.input[0].type.tensor_type.shape.dim],
        "metadata": {m.key: m.value for m in model.metadata_props},
        "output_shape": list(y.shape),
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
    }
    if a.repeat > 0:
        run(x)
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - t) * 1000)
        report["latency_ms"] = statistics.median(times)
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line naming the failure, non-zero exit
        print(f"onnx_check: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
