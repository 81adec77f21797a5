"""The exported folder's model card: README.md in the Hugging Face model-card layout.

YAML front matter (library, tags, metrics) for the hub's index, then what a person deciding whether
to use the model needs: intended use, the training data and its hash, the test metrics with the
test size, the from-scratch verdict, limitations, and how to load it without headstart.
"""

from __future__ import annotations

import json


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "not measured"


def _architecture(model) -> str:
    """What the model is, in words: a model trained from scratch says so (its ``summary``)."""
    summary = getattr(model, "summary", None)
    if summary:
        return summary
    return (f"the backbone `{model.backbone.name}` ({'fine-tuned' if model.finetuned else 'frozen, linear probe'}) "
            "and a linear head")


def model_card(model, labels: dict) -> str:
    """The model card (markdown) of ``model`` (a :class:`headstart.model.Model`) as exported with ``labels``."""
    info, metrics = model.info, model.metrics
    config, manifest = info.get("config", {}), info.get("manifest", {})
    counts = config.get("counts", {})
    modality = labels["input"]
    scratch = metrics.get("baseline") or {}
    verdict = scratch.get("verdict") or scratch.get("skipped") or "No from-scratch baseline was trained."
    inputs = (f"uint8 pixels `pixels` (n, {labels['image_size']}, {labels['image_size']}, 3), RGB, resized as "
              "`examples/predict_onnx.py` does" if modality == "image" else
              "raw texts `text`, a string tensor (n,): the graph splits them into words and characters itself "
              "(no tokenizer.json), counts its TF-IDF n-grams and applies the linear layer"
              if labels.get("text_input") == "raw" else
              f"int64 `input_ids` and `attention_mask` (n, tokens) from `tokenizer.json` (at most "
              f"{labels['max_length']} tokens)")
    front = {"library_name": "onnx", "pipeline_tag": "image-classification" if modality == "image"
             else "text-classification", "tags": ["headstart", "onnx", "transfer-learning", modality,
                                                 *(["int8"] if labels["quantized"] else [])]}
    front_lines = [f"{key}: {json.dumps(value)}" for key, value in front.items()]
    front_lines += ["metrics:", "- accuracy", "- f1"]
    return "\n".join([
        "---", *front_lines, "---", "",
        f"# {labels['name']}", "",
        f"A {modality} classifier of {len(model.classes)} classes ({', '.join(model.classes)}): {_architecture(model)}, "
        f"exported by headstart as one ONNX graph ({labels['quantized'] or 'fp32'}).", "",
        "## Intended use", "",
        f"Sorting {modality} items like those it was trained on into these classes. The probabilities are "
        "meant to be read: route low-confidence items to a person.", "",
        "## Training data", "",
        f"- source: `{manifest.get('data', 'unknown')}`",
        f"- hash (sha256 of items, labels and splits): `{manifest.get('data_hash', 'unknown')}`",
        f"- items: {counts.get('train', '?')} train, {counts.get('val', '?')} validation, {counts.get('test', '?')} test;"
        f" seed {config.get('seed', '?')}", "",
        "## Metrics", "",
        f"On the test split of {metrics.get('n', counts.get('test', '?'))} items, measured by "
        "headstart on the model before export:", "",
        "| metric | value |", "|---|---|",
        f"| accuracy | {_number(metrics.get('accuracy'))} |",
        f"| macro F1 | {_number(metrics.get('macro_f1'))} |",
        f"| expected calibration error | {_number(metrics.get('ece'))} |", "",
        "## Compared with training from scratch", "", verdict, "",
        "## Limitations", "",
        f"- Trained on {counts.get('train', 'few')} items: expect lower accuracy on items unlike them (other "
        "sources, styles, languages), and read the test size before trusting small differences.",
        "- It always answers one of its classes, also for items that belong to none.",
        *(["- int8 quantization changes the probabilities a little; check accuracy on your own data.",
           "- Run this int8 graph with ONNX Runtime's session setting `session.x64quantprecision` = `1` (as "
           "`predict_onnx.py` and headstart do): on x86 CPUs without VNNI its fast int8 kernel can overflow."]
          if labels["quantized"] else []),
        "",
        "## How to load", "",
        f"Input: {inputs}. Output: `probabilities` (n, {len(model.classes)}), columns in `labels.json`'s `classes` order.",
        "", "```", "pip install onnxruntime tokenizers numpy pillow",
        "python predict_onnx.py THIS_FOLDER INPUT OUTPUT.csv   # examples/predict_onnx.py in headstart", "```", "",
        "With headstart: `headstart.load(THIS_FOLDER).predict([...])`.", "",
    ])
