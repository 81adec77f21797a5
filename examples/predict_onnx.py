"""Predict from a `headstart export` folder with only onnxruntime, tokenizers, numpy and pillow.

python predict_onnx.py EXPORTED_DIR INPUT OUTPUT.csv  (INPUT: a CSV with a `text` column, or a folder of images)
OUTPUT.csv keeps the input's columns (images: `path`, relative to the folder), adds `prediction` and `p_<class>`.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image
from tokenizers import Tokenizer

def image_pixels(path, size, whole=False):
    """Uint8 (size, size, 3): small images (all, if `whole`) stretched whole, others resized, center-cropped."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    if whole or max(width, height) < size:
        return np.asarray(image.resize((size, size), Image.BILINEAR))
    short = round(size / 0.875)
    new = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
    left, top = round((new[0] - size) / 2), round((new[1] - size) / 2)
    return np.asarray(image.resize(new, Image.BILINEAR).crop((left, top, left + size, top + size)))


def main(folder, source, output):
    """Write the predictions of the export in ``folder`` for ``source`` to the CSV file ``output``."""
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    options = onnxruntime.SessionOptions()  # exact int8 on x86 CPUs without VNNI, whose fast kernel can overflow
    options.add_session_config_entry("session.x64quantprecision", "1")
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    raw, whole, size = labels.get("text_input") == "raw", labels.get("frame") == "whole", labels.get("image_size")
    if labels["input"] == "text":
        with open(source, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        tokenizer = None if raw else Tokenizer.from_file(str(folder / "tokenizer.json"))  # raw: TF-IDF graphs
    else:
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in Image.registered_extensions())
        rows = [{"path": p.relative_to(source).as_posix()} for p in files]
    ordered, proba = sorted(rows, key=lambda row: len(row.get("text", ""))), {}  # less padding a batch
    for batch in (ordered[start:start + 32] for start in range(0, len(ordered), 32)):
        if labels["input"] == "text":
            encoded = None if raw else tokenizer.encode_batch([row["text"] for row in batch])
            feed = {"text": np.array([row["text"] for row in batch], dtype=object)} if raw else {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
        else:
            feed = {"pixels": np.stack([image_pixels(source / row["path"], size, whole) for row in batch])}
        proba.update(zip(map(id, batch), session.run(None, feed)[0]))
    header = [*(rows[0] if rows else {}), "prediction", *(f"p_{name}" for name in labels["classes"])]
    with open(output, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([header] + [[*row.values(), labels["classes"][int(proba[id(row)].argmax())],
                                                *(f"{x:.6f}" for x in proba[id(row)])] for row in rows])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
