"""TF-IDF of word and character n-grams with a linear layer as one ONNX graph over raw texts, and its Python twin.

The graph takes a string tensor (n,) of raw texts. Each block splits texts with onnxruntime's
``com.microsoft.Tokenizer`` (a re2 expression) and counts the vocabulary's n-grams with the standard
``TfIdfVectorizer`` (counts only n-grams in its pool, so the n-grams of any other tokens are ignored
as scikit-learn ignores words outside its vocabulary); then sublinear tf (1 + log tf), idf weights,
L2 normalisation per block, the linear layer and a softmax, as scikit-learn's ``TfidfVectorizer``
and logistic regression compute them.

The analyzers here (:func:`word_ngrams`, :func:`char_ngrams`) are what the Python model uses, so
that it and the graph see the same tokens: the regular expressions below mean the same in Python's
``re`` and in re2 (words: runs of two or more letters, digits or underscores, case kept: ONNX's
lowercasing operator needs system locales that are often absent; characters: one character, or one
run of ASCII whitespace, between a start and an end mark).
"""

from __future__ import annotations

import re

import numpy as np

from headstart.data.dataset import MAX_TEXT_CHARS as MAX_CHARS  # cut as headstart cuts texts it reads

WORD_RE2 = r"[\p{L}\p{N}_]{2,}"
WORD_PY = re.compile(r"\w{2,}")  # Python's \w is Unicode letters, digits and underscore
CHAR_RE2 = r"[\t\n\v\f\r ]+|(?s)."
CHAR_PY = re.compile(r"[\t\n\v\f\r ]+|.", re.DOTALL)
START, END = "\x02", "\x03"  # the marks the ONNX tokenizer's mark=1 adds around each text
PAD = "#pad#"  # fills rows of fewer tokens: never a token of either expression, so never in an n-gram


def word_tokens(text: str) -> list[str]:
    """The word tokens of ``text`` (case kept)."""
    return WORD_PY.findall(text[:MAX_CHARS])


def char_tokens(text: str) -> list[str]:
    """The character tokens of ``text`` (whitespace runs as one token) between the start and end marks."""
    return [START, *CHAR_PY.findall(text[:MAX_CHARS]), END]


def _ngrams(tokens: list[str], low: int, high: int, joiner: str) -> list[str]:
    return [joiner.join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


def word_ngrams(low: int, high: int):
    """A scikit-learn analyzer: word n-grams of ``low`` to ``high`` words, joined by a space."""
    return lambda text: _ngrams(word_tokens(text), low, high, " ")


def char_ngrams(low: int, high: int):
    """A scikit-learn analyzer: character n-grams of ``low`` to ``high`` tokens, joined."""
    return lambda text: _ngrams(char_tokens(text), low, high, "")


ANALYZERS = {"words": (word_ngrams, lambda key: key.split(" ")),
             "chars": (char_ngrams, lambda key: CHAR_PY.findall(key))}


def _pool(kind: str, vocabulary: list[str], low: int, high: int):
    """(pool_strings, ngram_counts, ngram_indexes) of TfIdfVectorizer for a vocabulary in column order."""
    split = ANALYZERS[kind][1]
    by_n = {n: [] for n in range(1, high + 1)}
    for column, key in enumerate(vocabulary):
        tokens = split(key)
        by_n[len(tokens)].append((tokens, column))
    pool, counts, indexes = [], [], []
    for n in range(1, high + 1):
        counts.append(len(pool))
        for tokens, column in by_n[n]:
            pool += tokens
            indexes.append(column)
    return pool, counts, indexes


def build_graph(blocks: list[dict], weight: np.ndarray, bias: np.ndarray):
    """The ONNX model: texts (n,) strings in, ``probabilities`` (n, k) out.

    Args:
        blocks: one a vectorizer, in feature order: ``kind`` (``words`` or ``chars``), ``ngram_range``,
            ``vocabulary`` (in column order), ``idf`` and ``sublinear_tf``.
        weight: the linear layer (k, d) over the stacked blocks.
        bias: its bias (k,).
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    const("one", np.float32(1.0)), const("zero", np.float32(0.0)), const("tiny", np.float32(1e-30))
    const("axis1", np.array([1], np.int64)), const("col", np.array([1], np.int64))
    inits.append(helper.make_tensor("pad", TensorProto.STRING, [1, 1], [PAD.encode()]))
    nodes += [helper.make_node("Shape", ["text"], ["n"]),
              helper.make_node("Concat", ["n", "col"], ["n_by_1"], axis=0),
              helper.make_node("Expand", ["pad", "n_by_1"], ["pads"])]
    outputs = []
    for b, block in enumerate(blocks):
        low, high = block["ngram_range"]
        pool, counts, indexes = _pool(block["kind"], block["vocabulary"], low, high)
        p = f"b{b}_"
        tokenexp, mark = (WORD_RE2, 0) if block["kind"] == "words" else (CHAR_RE2, 1)
        nodes += [
            helper.make_node("Tokenizer", ["text"], [p + "tokens"], domain="com.microsoft", mark=mark,
                             mincharnum=1, pad_value=PAD, tokenexp=tokenexp),
            # one pad column more: a batch without any token would otherwise be (n, 0)
            helper.make_node("Concat", [p + "tokens", "pads"], [p + "padded"], axis=1),
            helper.make_node("TfIdfVectorizer", [p + "padded"], [p + "tf"], mode="TF", min_gram_length=low,
                             max_gram_length=high, max_skip_count=0, pool_strings=pool, ngram_counts=counts,
                             ngram_indexes=indexes)]
        tf = p + "tf"
        if block.get("sublinear_tf", True):  # 1 + log tf where tf > 0 (log 0 = -inf is never picked)
            nodes += [helper.make_node("Log", [tf], [p + "log"]),
                      helper.make_node("Add", [p + "log", "one"], [p + "log1"]),
                      helper.make_node("Greater", [tf, "zero"], [p + "seen"]),
                      helper.make_node("Where", [p + "seen", p + "log1", "zero"], [p + "sub"])]
            tf = p + "sub"
        nodes += [helper.make_node("Mul", [tf, const(p + "idf", np.asarray(block["idf"], np.float32))], [p + "w"]),
                  helper.make_node("Mul", [p + "w", p + "w"], [p + "sq"]),
                  helper.make_node("ReduceSum", [p + "sq", "axis1"], [p + "ss"], keepdims=1),
                  helper.make_node("Sqrt", [p + "ss"], [p + "norm"]),
                  helper.make_node("Max", [p + "norm", "tiny"], [p + "safe"]),  # an empty row stays zero
                  helper.make_node("Div", [p + "w", p + "safe"], [p + "out"])]
        outputs.append(p + "out")
    nodes += [helper.make_node("Concat", outputs, ["features"], axis=1),
              helper.make_node("MatMul", ["features", const("weight_t", np.asarray(weight, np.float32).T.copy())],
                               ["logits0"]),
              helper.make_node("Add", ["logits0", const("bias", np.asarray(bias, np.float32))], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, "tfidf_linear", [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                             [None, int(np.asarray(weight).shape[0])])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
