#!/usr/bin/python3
"""A "bring your own model" example: a torchvision classifier trained here and exported to ONNX, and the image
folders a user would have, for `fleetadapt model build --onnx` and `fleetadapt demo --onnx` (docs/models.md).

Usage: /usr/bin/python3 deploy/tools/make_byom_example.py OUT_DIR [--arch resnet18|mobilenet_v2] [--steps N]
Needs Debian's python3-torch, python3-torchvision, python3-pil, python3-onnx and dataset-fashion-mnist; no network, no pretrained
weights (`weights=None`, trained from scratch, deterministic seeds).

Writes into OUT_DIR:
* `model.onnx`: torchvision `<arch>(num_classes=10)` trained briefly on Fashion-MNIST as RGB, exported in eval mode
  (opset 14, dynamic batch axis; PyTorch folds batch norm into the convolutions);
* `source/`: 2,000 training images, unlabeled (a flat folder), what the variants are distilled on;
* `val/<class>/`: 1,000 test images in the ImageFolder layout, to measure accuracy;
* `target/<class>/`: 2,400 other test images in a new domain (lower contrast, a grey haze and sensor noise), the
  devices' cameras;
* `preprocessing.txt`: the flags that reproduce the training transform below.
Every image is a 28×28 RGB PNG. The network was trained on them as torchvision would load them:
  Resize(36, bilinear, antialias=False) -> CenterCrop(32) -> ToTensor -> Normalize(mean, std)
i.e. `--input 3x32x32 --resize 36 --crop 32 --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353`.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_onnx_fixtures import fashion  # noqa: E402  (the Fashion-MNIST reader the importer's fixtures use)

# Folder names sort in logit order (ImageFolder's labels are the sorted folder names).
CLASSES = [f"{i}-{n}" for i, n in enumerate(["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                              "Ankle boot"])]
MEAN, STD = 0.286, 0.353
RESIZE, CROP = 36, 32


def rgb(gray):
    """(N, 28, 28) uint8 -> (N, 28, 28, 3) uint8, the gray replicated: what the PNGs hold."""
    return np.repeat(gray[..., None], 3, axis=-1)


def transform(pixels):
    """(N, 28, 28, 3) uint8 -> (N, 3, 32, 32) float32: the model's training and evaluation transform."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    x = TF.resize(x, RESIZE, InterpolationMode.BILINEAR, antialias=False)
    x = TF.center_crop(x, [CROP, CROP])
    return TF.normalize(x, [MEAN] * 3, [STD] * 3)


def shifted(pixels, seed):
    """The target domain: contrast down to 60 %, a grey haze, Gaussian sensor noise (sigma 8/255)."""
    rng = np.random.default_rng(seed)
    x = pixels.astype(np.float32) * 0.6 + 50 + rng.normal(0, 8, size=pixels.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def write_png(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="resnet18", choices=["resnet18", "mobilenet_v2"])
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)

    train_x, train_y = fashion("train")
    test_x, test_y = fashion("test")
    model = getattr(torchvision.models, args.arch)(weights=None, num_classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps)
    rng = np.random.default_rng(1)
    started = time.time()
    model.train()
    for step in range(args.steps):
        i = rng.choice(len(train_x), args.batch, replace=False)
        x, y = transform(rgb(train_x[i])), torch.from_numpy(train_y[i].astype(np.int64))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step + 1}/{args.steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True)
    model.eval()

    def accuracy(pixels, labels):
        with torch.no_grad():
            hits = sum((model(transform(pixels[k:k + 250])).argmax(1).numpy() == labels[k:k + 250]).sum() for k in range(0, len(pixels), 250))
        return hits / len(pixels)

    val, target = slice(0, 1000), slice(1000, 3400)
    target_pixels = shifted(rgb(test_x[target]), seed=3)
    print(f"{args.arch}: test accuracy {accuracy(rgb(test_x[val]), test_y[val]):.3f} clean, "
          f"{accuracy(target_pixels, test_y[target]):.3f} on the target domain")

    torch.onnx.export(model, torch.zeros(1, 3, CROP, CROP), os.path.join(args.out, "model.onnx"), opset_version=14,
                      input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.EVAL)
    source = rgb(train_x[rng.choice(len(train_x), 2000, replace=False)])
    for k, p in enumerate(source):
        write_png(os.path.join(args.out, "source", f"{k:05d}.png"), p)
    for k, (p, y) in enumerate(zip(rgb(test_x[val]), test_y[val])):
        write_png(os.path.join(args.out, "val", CLASSES[y], f"{k:05d}.png"), p)
    for k, (p, y) in enumerate(zip(target_pixels, test_y[target])):
        write_png(os.path.join(args.out, "target", CLASSES[y], f"{k:05d}.png"), p)
    with open(os.path.join(args.out, "preprocessing.txt"), "w") as f:
        f.write(f"--input 3x{CROP}x{CROP} --resize {RESIZE} --crop {CROP} --mean {MEAN},{MEAN},{MEAN} --std {STD},{STD},{STD}\n")
    print(f"wrote {args.out}/model.onnx, source/ (2000), val/ (1000), target/ (2400) in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
