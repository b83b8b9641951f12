"""Tokenizers and the text input adapter.

Every checkpoint is tokenised with its own Hugging Face ``tokenizers`` tokenizer (the Rust library
transformers' fast tokenizers are built on), loaded from the checkpoint folder:
``tokenizer.json`` when present, else ``vocab.txt`` (BERT WordPiece), ``vocab.json`` +
``merges.txt`` (byte-level BPE: RoBERTa, with ``<s> ... </s>`` around each text, or GPT-2, which
adds nothing) or ``spiece.model`` (SentencePiece, T5: converted by transformers' tokenizer, which
appends ``</s>``). The adapter always saves a single ``tokenizer.json`` as
its asset, so predict time needs no hub access and no transformers import.

With no weights and no assets (random-weight shape tests) a small built-in WordPiece tokenizer is
used (:func:`fallback_tokenizer`): ids are valid for any vocabulary of at least
``FALLBACK_VOCAB_SIZE`` entries.
"""

from __future__ import annotations

import functools
import hashlib
import json
import string
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from automl_tl.backbones import InputAdapter
from automl_tl.errors import ConfigError, WeightsUnavailableError

__all__ = [
    "TextAdapter",
    "load_tokenizer",
    "fallback_tokenizer",
    "tokenizer_files",
    "special_ids",
    "clean_text",
    "ASSET_TOKENIZER",
    "ASSET_CONFIG",
    "FALLBACK_VOCAB_SIZE",
    "PAD_LENGTHS",
    "padded_length",
    "TOKEN_IDS",
    "IDS_CACHE_BYTES",
]

ASSET_TOKENIZER = "tokenizer.json"
ASSET_CONFIG = "text_adapter.json"

_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def clean_text(x: Any) -> str:
    """A string the tokenizer accepts: None/NaN -> "", lone surrogates -> U+FFFD."""
    if x is None:
        return ""
    if isinstance(x, float) and x != x:
        return ""
    if isinstance(x, bytes):
        x = x.decode("utf-8", "replace")
    if not isinstance(x, str):
        x = str(x)
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:
        x = x.encode("utf-8", "replace").decode("utf-8", "replace")
    return x


_TOKENIZER_KINDS = {
    "tokenizer.json": ("tokenizer.json",),
    "vocab.txt": ("vocab.txt",),
    "bpe": ("vocab.json", "merges.txt"),
    "spiece": ("spiece.model",),
}


def tokenizer_files(folder: Path, kind: str | None = None) -> str | None:
    """Which tokenizer description ``folder`` holds ("tokenizer.json", "vocab.txt", "bpe",
    "spiece"; the first present in that order) or None; with ``kind``: that one if present."""
    kinds = [kind] if kind is not None else list(_TOKENIZER_KINDS)
    for k in kinds:
        if all((Path(folder) / f).is_file() for f in _TOKENIZER_KINDS[k]):
            return k
    return None


def _lowercase_flag(folder: Path) -> bool:
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            return bool(json.loads(cfg.read_text(encoding="utf-8")).get("do_lower_case", True))
        except (OSError, ValueError):
            pass
    name = folder.name.lower()
    return not ("cased" in name and "uncased" not in name)


@functools.lru_cache(maxsize=16)
def _load_tokenizer_cached(folder: str, mtime: float):
    import tokenizers
    from tokenizers import processors

    path = Path(folder)
    kind = tokenizer_files(path)
    if kind == "tokenizer.json":
        tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    elif kind == "vocab.txt":
        from tokenizers.implementations import BertWordPieceTokenizer

        tok = BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=_lowercase_flag(path))._tokenizer
    elif kind == "bpe":
        from tokenizers.implementations import ByteLevelBPETokenizer

        impl = ByteLevelBPETokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
        tok = impl._tokenizer
        bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        if bos is not None and eos is not None:   # RoBERTa: <s> text </s>
            tok.post_processor = processors.RobertaProcessing(("</s>", eos), ("<s>", bos))
        # else GPT-2: the text's tokens only (GPT2Tokenizer adds no special tokens)
    elif kind == "spiece":
        tok = _sentencepiece_tokenizer(path)
    else:
        raise WeightsUnavailableError(
            f"the model folder {folder} has no tokenizer: expected tokenizer.json, or vocab.txt "
            f"(BERT), or vocab.json + merges.txt (RoBERTa, GPT-2), or spiece.model (T5). Copy the "
            f"tokenizer files of the checkpoint into that folder."
        )
    return tok.to_str()


def _sentencepiece_tokenizer(path: Path):
    """A ``spiece.model`` folder's tokenizer as transformers' fast tokenizer converts it (the
    normaliser, ``▁`` pre-tokeniser, ``<extra_id_*>`` tokens and ``</s>`` post-processor of
    T5), so ids equal ``AutoTokenizer.from_pretrained(folder)``'s."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path), use_fast=True).backend_tokenizer
    except Exception as exc:  # noqa: BLE001 - sentencepiece / protobuf missing, bad file
        raise WeightsUnavailableError(
            f"could not read the SentencePiece tokenizer {path / 'spiece.model'}: {exc}. Install "
            f"`sentencepiece` and `protobuf`, or add the checkpoint's tokenizer.json to {path}."
        ) from exc


def load_tokenizer(folder: str | Path):
    """A fresh ``tokenizers.Tokenizer`` for the checkpoint in ``folder`` (parsed once per folder)."""
    import tokenizers

    path = Path(folder)
    if not path.is_dir():
        raise WeightsUnavailableError(f"tokenizer folder {path} does not exist")
    mtime = max((f.stat().st_mtime for f in path.iterdir() if f.is_file()), default=0.0)
    return tokenizers.Tokenizer.from_str(_load_tokenizer_cached(str(path.resolve()), mtime))


FALLBACK_VOCAB_SIZE = 256


@functools.lru_cache(maxsize=1)
def _fallback_str() -> str:
    import tokenizers
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(_BERT_SPECIALS)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab += list(chars)
    vocab += ["##" + c for c in string.ascii_lowercase + string.digits]
    words = ("the a an and of to in is it that this was for on with as but not be are film movie "
             "good bad great story one more like its his her they you all just so").split()
    vocab += [w for w in words if w not in vocab]
    vocab = vocab[:FALLBACK_VOCAB_SIZE]
    tok = tokenizers.Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    return tok.to_str()


def fallback_tokenizer():
    """A tiny WordPiece tokenizer (ids < FALLBACK_VOCAB_SIZE) for random-weight models."""
    import tokenizers

    return tokenizers.Tokenizer.from_str(_fallback_str())


def special_ids(tok) -> dict:
    """pad / unk ids of a tokenizer (BERT, RoBERTa / T5 or GPT-2 conventions)."""
    out = {}
    # GPT-2 has no pad token: its <|endoftext|> pads (the padding mask hides it)
    for key, names in (("pad", ("[PAD]", "<pad>", "<|endoftext|>")), ("unk", ("[UNK]", "<unk>"))):
        for n in names:
            i = tok.token_to_id(n)
            if i is not None:
                out[key] = int(i)
                break
    out.setdefault("pad", 0)
    return out


#: the lengths a batch is padded to (the first that fits its longest text, capped by the
#: adapter's sequence length): about 1.5x apart, so padding wastes at most a third, and few: a
#: compiled forward (``jax.jit``, ``tf.function``) is traced once per length, 8 at 128 tokens.
#: On the 2 000 Rotten Tomatoes training texts (batches of 32 in token order, at most 128 tokens)
#: these pad 21 % more tokens than the texts hold (7 lengths used); multiples of 16 pad 29 % (8
#: lengths possible), powers of two 46 % (5), each batch's own longest text 2 % (42 lengths: a
#: trace each), the fixed 128 tokens 378 % (benchmarks/bench_text_batches.py).
PAD_LENGTHS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

#: how many bytes of token ids (with their texts' keys) the process keeps, over every tokenizer:
#: 128 MiB holds 1.1 M Rotten Tomatoes-sized texts (27 tokens) or 250 k texts of 128 tokens -
#: every data set a search embeds and fine-tunes in one process - while staying a small share of
#: any machine that fine-tunes a transformer. Texts past it are tokenised again at every pass
#: (as before the cache), not kept: memory stays bounded whatever the data.
IDS_CACHE_BYTES = 128 * 2**20
_ENTRY_BYTES = 200  # a dict slot and a numpy array header, per cached text


class _IdsCache:
    """Token ids of texts, per (tokenizer, sequence length), shared by every adapter of the
    process: a data set is tokenised once, then every epoch, embedding pass and ``length`` call
    reads the ids (thread-safe: decode workers call adapters concurrently). First come, first
    kept up to :data:`IDS_CACHE_BYTES` (no eviction: a least-recently-used order would miss on
    every text of a pass over data larger than the budget, which is cycled through in order)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._tables: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def table(self, key: tuple[str, int]) -> dict[str, np.ndarray]:
        with self._lock:
            return self._tables.setdefault(key, {})

    def add(self, table: dict, text: str, ids: np.ndarray) -> None:
        cost = ids.nbytes + sys.getsizeof(text) + _ENTRY_BYTES
        with self._lock:
            if text not in table and self.used + cost <= self.budget:
                table[text] = ids
                self.used += cost

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self.used = 0


TOKEN_IDS = _IdsCache(IDS_CACHE_BYTES)


def padded_length(longest: int, sequence_length: int) -> int:
    return min(next((p for p in PAD_LENGTHS if p >= longest), sequence_length), sequence_length)


class TextAdapter(InputAdapter):
    """Raw strings -> ``{"token_ids", "padding_mask"[, "segment_ids"]}`` int32 arrays ``(B, L)``.

    Texts are truncated to ``sequence_length`` tokens (special tokens kept). A batch is padded
    to the first of :data:`PAD_LENGTHS` that holds its longest text (at most ``sequence_length``):
    a few fixed shapes, so compiled functions are traced a few times only, and short texts do not
    pay for the longest one. ``lengths(items)`` / ``length(item)`` (tokens) let the batching group
    texts of similar length (:mod:`automl_tl.batching`).

    Token ids come from :data:`TOKEN_IDS`, keyed by the tokenizer (a digest of its JSON, which
    holds the truncation length) and the sequence length: each text is tokenised once per
    process, however many epochs, embedding passes and adapters (one per pass) read it.
    """

    def __init__(self, tokenizer, *, backbone: str, family: str, sequence_length: int,
                 segment_ids: bool, input_config: dict | None = None, source: str = "") -> None:
        if int(sequence_length) < 4:
            raise ConfigError(f"text sequence_length must be at least 4, got {sequence_length}")
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.family = family
        self.sequence_length = int(sequence_length)
        self.segment_ids = bool(segment_ids)
        self.input_config = dict(input_config or {})
        self.input_config["sequence_length"] = self.sequence_length
        self.source = source
        ids = special_ids(tokenizer)
        self.pad_id = ids["pad"]
        self.unk_id = ids.get("unk")
        # a tokenizer that adds no special tokens (GPT-2) gives an empty text no token at all: it
        # gets one real token (<|endoftext|>, else the pad token), so every row has a state to read
        eot = tokenizer.token_to_id("<|endoftext|>")
        self.empty_id = int(eot) if eot is not None else self.pad_id
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.sequence_length)
        digest = hashlib.blake2b(tokenizer.to_str().encode("utf-8"), digest_size=16).hexdigest()
        self._ids_table = TOKEN_IDS.table((digest, self.sequence_length))

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each (clean) text's ids, truncated to ``sequence_length``: from the cache, the texts
        not in it tokenised in one ``encode_batch`` (Rust threads) and added."""
        table = self._ids_table
        out = [table.get(t) for t in texts]
        todo = [i for i, ids in enumerate(out) if ids is None]
        if todo:
            for i, enc in zip(todo, self.tokenizer.encode_batch([texts[i] for i in todo])):
                out[i] = np.asarray(enc.ids[:self.sequence_length], dtype=np.int32)
                TOKEN_IDS.add(table, texts[i], out[i])
        return out

    def lengths(self, items: Sequence[Any]) -> np.ndarray:
        """Tokens of each item as :meth:`encode` pads it (the first call tokenises the data set)."""
        ids = self.token_ids([clean_text(x) for x in items])
        return np.fromiter((max(1, len(i)) for i in ids), dtype=np.int64, count=len(ids))

    def length(self, item: Any) -> int:
        return int(self.lengths([item])[0])

    def encode(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.token_ids([clean_text(x) for x in items])
        L = padded_length(max(1, *map(len, encoded)), self.sequence_length) if encoded else self.sequence_length
        token_ids = np.full((len(encoded), L), self.pad_id, dtype=np.int32)
        mask = np.zeros((len(encoded), L), dtype=np.int32)
        for i, ids in enumerate(encoded):
            if not len(ids):
                ids = [self.empty_id]
            token_ids[i, : len(ids)] = ids
            mask[i, : len(ids)] = 1
        return token_ids, mask

    def __call__(self, items: Sequence[Any]) -> dict:
        if isinstance(items, str):
            items = [items]
        token_ids, mask = self.encode(list(items))
        out = {"token_ids": token_ids, "padding_mask": mask}
        if self.segment_ids:
            out["segment_ids"] = np.zeros_like(token_ids)
        return out

    def config(self) -> dict:
        return {
            "adapter": "automl_tl_text.TextAdapter",
            "backbone": self.backbone,
            "family": self.family,
            "sequence_length": self.sequence_length,
            "segment_ids": self.segment_ids,
            "pad_id": self.pad_id,
            "tokenizer": ASSET_TOKENIZER,
            "tokenizer_source": self.source,
            "input_config": self.input_config,
        }

    def save_assets(self, folder: str) -> None:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (ASSET_TOKENIZER + ".tmp")
        self.tokenizer.save(str(tmp))
        tmp.replace(path / ASSET_TOKENIZER)
        tmp = path / (ASSET_CONFIG + ".tmp")
        tmp.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        tmp.replace(path / ASSET_CONFIG)


def tokenizer_from_assets(assets_dir: str | Path):
    import tokenizers

    path = Path(assets_dir) / ASSET_TOKENIZER
    if not path.is_file():
        raise ConfigError(
            f"the text adapter assets in {assets_dir} have no {ASSET_TOKENIZER}: the run directory "
            f"is incomplete (re-run fit, or copy assets/ from the run that trained the model)"
        )
    return tokenizers.Tokenizer.from_file(str(path))
