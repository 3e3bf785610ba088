#!/usr/bin/python3
"""Writes the ImageIO test fixtures: small PNG/JPEG images, damaged and hostile files, Pillow's decodes and the
tensors torchvision makes of them for declared preprocessings (Tests/ImageIOTests/Fixtures, committed).

Debian 12: apt-get install -y python3-torch python3-torchvision python3-pil python3-numpy
Run:       /usr/bin/python3 deploy/tools/make_image_fixtures.py [out_dir]

The preprocessing definition the Swift side (Sources/ImageIO/Preprocessing.swift) reproduces:
  Pillow decode, convert("RGB") or convert("L")  ->  uint8 HWC
  torch float32 CHW, / 255 when scale_to_unit
  torchvision.transforms.functional.resize(t, size, InterpolationMode.BILINEAR, antialias=False)
      (size = N for shorter_side, [height, width] for width/height)
  torchvision.transforms.functional.center_crop(t, [height, width])
  bgr: t.flip(0)
  torchvision.transforms.functional.normalize(t, mean, std), then unsqueeze(0) -> NCHW

Files: <image>.u8 is the expected decode (uint8 HWC, raw); <image>.<case>.f32 the reference tensor (float32 NCHW,
little-endian, raw); index.json lists images, decodes, cases and the bad files with the error kind expected.
16-bit PNGs are written by hand (Pillow cannot write 16-bit RGB); their expected decode is round(v / 257) per
sample, alpha dropped, which is what the decoder promises (Pillow would keep only the high byte).
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../Tests/ImageIOTests/Fixtures")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20)


def smooth(h, w, c, depth=255):
    """Gradients plus noise: exercises interpolation without being JPEG's worst case."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for k in range(c):
        base = (x * (k + 1) * 37 + y * (3 - k % 3) * 23 + k * 50) % (depth + 1)
        noise = rng.integers(-depth // 16, depth // 16 + 1, size=(h, w))
        planes.append(np.clip(base + noise, 0, depth))
    return np.stack(planes, axis=-1).astype(np.uint16 if depth > 255 else np.uint8)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(arr, bitdepth, colortype, idat=None, width=None, height=None, interlace=False, extra=b""):
    """A PNG written by hand (8- or 16-bit samples, filter 0), optionally Adam7-interlaced, `extra` chunks after IHDR."""
    h, w = arr.shape[:2]
    dtype = ">u2" if bitdepth == 16 else "u1"
    passes = [arr[ys::dy, xs::dx] for xs, ys, dx, dy in ADAM7] if interlace else [arr]
    raw = b"".join(b"\x00" + p[y].astype(dtype).tobytes() for p in passes if p.size for y in range(p.shape[0]))
    ihdr = struct.pack(">IIBBBBB", width or w, height or h, bitdepth, colortype, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", idat if idat is not None else zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


index = {"generator": f"torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {Image.__version__}",
         "images": [], "cases": [], "bad": []}
decodes = {}


def add_image(name, data, expected_u8, exact):
    save(name, data)
    save(name + ".u8", np.ascontiguousarray(expected_u8).tobytes())
    h, w = expected_u8.shape[:2]
    c = 1 if expected_u8.ndim == 2 else expected_u8.shape[2]
    index["images"].append({"file": name, "decode": name + ".u8", "height": h, "width": w, "channels": c, "exact": exact})
    decodes[name] = expected_u8.reshape(h, w, c)


def pil_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def pil_decode(data):
    img = Image.open(io.BytesIO(data))
    return np.asarray(img.convert("RGB" if img.mode not in ("L", "I;16", "1") else "L"))


# PNG, 8-bit: gray, RGB, RGBA, palette with transparency.
for name, arr, mode in [("gray.png", smooth(15, 21, 1)[..., 0], "L"), ("rgb.png", smooth(17, 23, 3), "RGB"),
                        ("rgba.png", np.concatenate([smooth(13, 19, 3), smooth(13, 19, 1)], axis=2), "RGBA")]:
    data = pil_bytes(Image.fromarray(arr, mode), "PNG")
    add_image(name, data, pil_decode(data), True)
pal = Image.fromarray(smooth(11, 17, 3), "RGB").quantize(colors=16)
pal.info["transparency"] = 3
data = pil_bytes(pal, "PNG", transparency=3)
assert Image.open(io.BytesIO(data)).mode == "P"
add_image("palette.png", data, pil_decode(data), True)

# PNG, 16-bit, written by hand; expected decode round(v / 257).
for name, c, colortype in [("gray16.png", 1, 0), ("rgb16.png", 3, 2), ("rgba16.png", 4, 6)]:
    arr = smooth(9, 13, c, depth=65535)
    expected = np.floor(arr[..., : (1 if c == 1 else 3)].astype(np.float64) / 257 + 0.5).astype(np.uint8)
    add_image(name, png_bytes(arr, 16, colortype), expected if c > 1 else expected[..., 0], True)

# JPEG: baseline 4:2:0, progressive, gray; expected = Pillow's decode (libjpeg builds may differ by 1).
color = Image.fromarray(smooth(23, 31, 3), "RGB")
for name, img, kw in [("baseline.jpg", color, {"quality": 90}), ("progressive.jpg", color, {"quality": 85, "progressive": True}),
                      ("gray.jpg", Image.fromarray(smooth(18, 22, 1)[..., 0], "L"), {"quality": 90})]:
    data = pil_bytes(img, "JPEG", **kw)
    add_image(name, data, pil_decode(data), False)

# PNG, 8-bit, written by hand: Adam7-interlaced, and with the colour chunks most files carry (gAMA 1/2.2, sRGB),
# which libpng takes as sRGB, the output encoding, so the samples stay as they are (Pillow ignores both).
for name, kw in [("interlaced.png", {"interlace": True}), ("gama.png", {"extra": chunk(b"gAMA", struct.pack(">I", 45455))}),
                 ("srgb.png", {"extra": chunk(b"sRGB", b"\x00")})]:
    arr = smooth(14, 19, 3)
    data = png_bytes(arr, 8, 2, **kw)
    assert (pil_decode(data) == arr).all()
    add_image(name, data, arr, True)
# 1-bit gray (Pillow's mode "1"), 4-bit palette.
data = pil_bytes(Image.fromarray(smooth(10, 13, 1)[..., 0] > 128), "PNG")
add_image("gray1.png", data, pil_decode(data), True)
data = pil_bytes(Image.fromarray(smooth(9, 14, 3), "RGB").quantize(colors=16), "PNG", bits=4)
assert data[24] == 4, "palette not written at 4 bits"
add_image("palette4.png", data, pil_decode(data), True)

# Bad files: (name, bytes, kind the decoder must throw).
baseline = open(os.path.join(OUT, "baseline.jpg"), "rb").read()
rgb_png = open(os.path.join(OUT, "rgb.png"), "rb").read()
sof = baseline.index(b"\xff\xc0")
huge_jpg = baseline[: sof + 5] + struct.pack(">HH", 20000, 20000) + baseline[sof + 9:]
idat = rgb_png.index(b"IDAT")
flipped = bytearray(rgb_png)
flipped[idat + 10] ^= 0xFF
bad = [
    ("truncated.jpg", baseline[: len(baseline) // 2], "corrupt"),
    ("truncated.png", rgb_png[: len(rgb_png) // 2], "corrupt"),
    ("badcrc.png", bytes(flipped), "corrupt"),
    ("empty.jpg", b"", "empty"),
    ("empty.png", b"", "empty"),
    ("text.jpg", b"this is not an image, only a text file named .jpg\n", "not_an_image"),
    ("cmyk.jpg", pil_bytes(Image.fromarray(smooth(8, 8, 3), "RGB").convert("CMYK"), "JPEG"), "unsupported"),
    # Headers claiming 20000x20000 (1.2 GB decoded) over a few bytes of data.
    ("huge.png", png_bytes(np.zeros((1, 1, 3), np.uint8), 8, 2, idat=zlib.compress(b"\x00" * 60001), width=20000, height=20000), "too_large"),
    ("huge.jpg", huge_jpg, "too_large"),
]
for name, data, kind in bad:
    save(name, data)
    index["bad"].append({"file": name, "kind": kind})

# Preprocessings, as the manifest declares them, and torchvision's tensors.
imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
preps = {
    "A": {"resize": {"shorter_side": 16}, "interpolation": "bilinear", "crop": {"width": 14, "height": 14},
          "channels": "rgb", "scale_to_unit": True, **imagenet},
    "B": {"resize": {"width": 20, "height": 12}, "interpolation": "bilinear", "crop": None, "channels": "bgr",
          "scale_to_unit": True, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 1.0]},
    "C": {"resize": {"shorter_side": 9}, "interpolation": "bilinear", "crop": {"width": 8, "height": 8}, "channels": "gray",
          "scale_to_unit": True, "mean": [0.5], "std": [0.2]},
    "D": {"resize": None, "interpolation": "bilinear", "crop": {"width": 10, "height": 10}, "channels": "rgb",
          "scale_to_unit": False, "mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0]},
    "E": {"resize": {"shorter_side": 40}, "interpolation": "bilinear", "crop": {"width": 32, "height": 32},
          "channels": "rgb", "scale_to_unit": True, **imagenet},
}


def reference(u8, p):
    if p["channels"] == "gray" and u8.shape[2] == 3:
        u8 = np.asarray(Image.fromarray(u8, "RGB").convert("L"))[..., None]
    elif p["channels"] != "gray" and u8.shape[2] == 1:
        u8 = np.repeat(u8, 3, axis=2)
    t = torch.from_numpy(np.array(u8, copy=True)).permute(2, 0, 1).to(torch.float32)
    if p["scale_to_unit"]:
        t = t / 255
    r = p["resize"]
    if r:
        size = r["shorter_side"] if "shorter_side" in r else [r["height"], r["width"]]
        t = TF.resize(t, size, interpolation=InterpolationMode.BILINEAR, antialias=False)
    if p["crop"]:
        t = TF.center_crop(t, [p["crop"]["height"], p["crop"]["width"]])
    if p["channels"] == "bgr":
        t = t.flip(0)
    t = TF.normalize(t, p["mean"], p["std"])
    return t.unsqueeze(0).contiguous()


for image, case in [("rgb.png", "A"), ("rgb.png", "B"), ("rgb.png", "D"), ("rgb.png", "E"), ("gray.png", "A"),
                    ("gray.png", "C"), ("rgba.png", "A"), ("palette.png", "B"), ("rgb16.png", "C"),
                    ("baseline.jpg", "A"), ("progressive.jpg", "C"), ("gray.jpg", "E")]:
    p = {k: v for k, v in preps[case].items() if v is not None}
    t = reference(decodes[image], preps[case])
    name = f"{image}.{case}.f32"
    save(name, t.numpy().astype("<f4").tobytes())
    index["cases"].append({"image": image, "case": case, "preprocessing": p, "tensor": name, "shape": list(t.shape)})

with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump(index, f, indent=1)
total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")
