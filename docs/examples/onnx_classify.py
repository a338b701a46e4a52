"""Classify images with an exported transferlab pipeline: python onnx_classify.py MODEL.onnx IMAGE..."""
import json, sys
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
pre, classes = json.loads(meta["preprocess"]), json.loads(meta["classes"])
resample, crop, side = getattr(Image.Resampling, pre["interpolation"].upper()), pre["crop"], pre["resize"]

def prepare(path):  # upright RGB; shorter side to `resize`, centre `crop` (mode "resize": straight to crop × crop)
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    size = (crop, crop) if pre["mode"] == "resize" else (side, int(side * h / w)) if w <= h else (int(side * w / h), side)
    img, (w, h) = img.resize(size, resample), size
    left, top = round((w - crop) / 2), round((h - crop) / 2)
    return np.asarray(img.crop((left, top, left + crop, top + crop)))

scores, labels = session.run(["scores", "label"], {"images": np.stack([prepare(p) for p in sys.argv[2:]])})
print("\n".join(f"{p}\t{classes[k]}\t{s[k]:.4f}" for p, k, s in zip(sys.argv[2:], labels, scores)))
