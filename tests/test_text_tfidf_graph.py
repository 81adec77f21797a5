"""The TF-IDF model from scratch as one ONNX graph over raw texts: the same probabilities as the
Python model (within 1e-4) on awkward texts, and the same tokens as its analyzers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from headstart.errors import ModelError
from headstart.exported.text_tfidf_graph import build_graph, char_tokens, word_tokens
from headstart.transfer.scratch_model import ScratchModel
from headstart.transfer.scratch_models import Task, TextPredictor, tfidf_vectorizer, tfidf_words_chars

WORDS = ["good", "bad", "café", "ÉCOLE", "Great", "awful", "😀", "movie", "naïve", "中文", "fun", "a", "I", "x_y"]
AWKWARD = ["", " ", "   \t\n ", "a", "good", "GOOD good", "  leading and trailing  ", "tabs\tand\nnewlines\r\nhere",
           "non\u00a0breaking\u2003spaces", "café naïve ÉCOLE Straße İstanbul", "emoji 😀👍🏽 and 中文字符 mixed",
           "e\u0301 combining", "punctuation!!! ...?? (yes) -- no", "digits 123 4.5e6 _under_", "\x02\x03 marks",
           "good " * 4000, "x" * 20_000]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 7)) + ("\t\n" if i % 3 else "  ") for i in range(90)]
    y = np.array([int(("good" in t) or ("Great" in t)) for t in texts])
    return tfidf_words_chars(Task(texts[:60], y[:60], texts[60:], y[60:], 2)).predictor, texts


def _onnx(predictor: TextPredictor, texts) -> np.ndarray:
    model = build_graph(predictor.graph_blocks(), predictor.weight, predictor.bias)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"text": np.array(texts, dtype=object)})[0]


def test_the_graph_gives_the_python_probabilities_on_awkward_texts(fitted):
    predictor, texts = fitted
    mixed = AWKWARD + texts
    assert np.abs(_onnx(predictor, mixed) - predictor.predict_proba(mixed)).max() <= 1e-4
    # one at a time and a batch of nothing but empty texts (no token at all in the batch)
    for text in AWKWARD:
        assert np.abs(_onnx(predictor, [text]) - predictor.predict_proba([text])).max() <= 1e-4
    assert np.abs(_onnx(predictor, ["", ""]) - predictor.predict_proba(["", ""])).max() <= 1e-4


def test_the_analyzers_tokens():
    assert word_tokens("I like café_au_lait, 2 x 42!") == ["like", "café_au_lait", "42"]
    assert word_tokens("Good GOOD") == ["Good", "GOOD"]  # case kept
    assert char_tokens("a  b\n\tc😀") == ["\x02", "a", "  ", "b", "\n\t", "c", "😀", "\x03"]
    assert char_tokens("") == ["\x02", "\x03"]


def test_a_text_model_from_scratch_exports_and_the_export_matches(fitted, tmp_path):
    predictor, texts = fitted
    model = ScratchModel(predictor, ["neg", "pos"], name="tfidf-words-chars", method="TF-IDF + logistic regression")
    exported = model.export(tmp_path / "onnx")
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"text": np.array(AWKWARD, dtype=object)})[0]
    assert np.abs(got - predictor.predict_proba(AWKWARD)).max() <= 1e-4


def test_a_model_saved_with_scikit_learns_char_wb_is_refused_in_one_line(fitted, tmp_path):
    _, texts = fitted
    params = [{"analyzer": "char_wb", "ngram_range": (2, 5), "lowercase": False, "sublinear_tf": True}]
    vectorizer = tfidf_vectorizer(params[0]).fit(texts)
    width = len(vectorizer.vocabulary_)
    old = TextPredictor([vectorizer], np.zeros((2, width), np.float32), np.zeros(2, np.float32), params)
    model = ScratchModel(old, ["neg", "pos"], name="tfidf-words-chars", method="TF-IDF + logistic regression")
    with pytest.raises(ModelError, match="fit it again") as caught:
        model.export(tmp_path / "onnx")
    assert "\n" not in str(caught.value) and not (tmp_path / "onnx").exists()
