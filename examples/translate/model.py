"""MLflow "models from code" definition for the ``translate`` example: Chinese to English.

A GRU encoder-decoder with Luong ("general") attention. The Chinese side is read one
character at a time (no word segmenter), the English side is written one word at a
time. Decoding is greedy or a beam search (``beam`` wide).

This file is copied into the MLflow model directory and executed on load, so it must be
self-contained (only mlflow, numpy and torch). Nothing is pickled: the weights are a
``state_dict`` read with ``torch.load(..., weights_only=True)``; the two vocabularies,
the layer sizes and the default beam width come from a JSON artifact (``vocab``).

Input: a list / 1-D array of Chinese strings. Output: one English string per input.
``params={"beam": N}`` picks the beam width (1: greedy, at most 16) where the caller
passes params; the signature ``train.py`` logs declares it.

Fine-tuning (``maas finetune translate``, see maas_ray/training/torch_model.py): the
``PythonModel`` names its loss ``seq2seq`` and gives the platform the token ids of
sources (``finetune_inputs``) and targets (``finetune_targets``: begin and end tokens
around the words, as ``train.py`` trains) and the teacher-forced pass
(``finetune_forward``). The vocabularies stay the parent's: a word it never saw is
unknown (``<unk>``) to the child too.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
DEFAULT_BEAM = 4
MAX_BEAM = 16
MAX_SOURCE = 100  # characters read of one input; the rest is cut off
MAX_TARGET = 60  # words written at most for one input
LENGTH_ALPHA = 0.6  # beam scores are divided by ((5 + length) / 6) ** alpha (GNMT)
BATCH = 64  # sentences decoded together (greedy)

# English words (with an apostrophe inside: o'clock, friend's), numbers, and single
# punctuation marks; "twenty-five" is three tokens, so numbers are learnt in parts.
_EN_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+|[^\sA-Za-z\d]")


def zh_tokens(text: str) -> list[str]:
    """Chinese is read one character at a time; spaces are dropped."""
    return [c for c in str(text) if not c.isspace()]


def en_tokens(text: str) -> list[str]:
    return _EN_TOKEN.findall(str(text))


def detokenize(tokens: Iterable[str]) -> str:
    """English words back into a sentence: no space before , . ? ! or around -."""
    text = " ".join(tokens)
    text = re.sub(r" ([.,?!;:])", r"\1", text)
    return text.replace(" - ", "-")


class Vocab:
    """Tokens and their ids; ids 0-3 are the specials (pad, unknown, start, end)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(tokens[:4])}")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_count: int = 1) -> Vocab:
        """Every token seen ``min_count`` times, most frequent first (ties by name)."""
        counts = Counter(t for s in sentences for t in s)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t)
        )
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first end; specials are left out."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return out


def pad_batch(seqs: Sequence[list[int]], min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) long tensor padded with PAD, and the lengths (at least ``min_len``)."""
    lengths = [max(len(s), min_len) for s in seqs]
    out = torch.full((len(seqs), max(lengths)), PAD, dtype=torch.long)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, torch.tensor(lengths, dtype=torch.long)


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder, GRU decoder, Luong "general" attention.

    ``forward(src, src_len, tgt_in)`` is the teacher-forced pass of training: it
    returns (B, T, target vocabulary) logits for the next word at every position.
    Decoding uses ``encode`` once, then ``step`` per word.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        emb: int = 96,
        hidden: int = 192,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        enc = hidden // 2  # per direction: both directions together are ``hidden`` wide
        self.src_emb = nn.Embedding(src_vocab, emb, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(tgt_vocab, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, enc, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * enc, hidden)
        self.decoder = nn.GRU(emb, hidden, batch_first=True)
        self.attn = nn.Linear(2 * enc, hidden, bias=False)  # score = h . W enc
        self.combine = nn.Linear(2 * enc + hidden, hidden)
        self.out = nn.Linear(hidden, tgt_vocab)
        self.drop = nn.Dropout(dropout)

    def encode(
        self, src: torch.Tensor, src_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder outputs (B, S, H), their attention keys (B, S, H), the source mask
        (B, S; True on real characters) and the decoder's first state (1, B, H)."""
        emb = self.drop(self.src_emb(src))
        packed = pack_padded_sequence(emb, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, last = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h0 = torch.tanh(self.bridge(torch.cat([last[0], last[1]], dim=-1))).unsqueeze(0)
        mask = src != PAD
        return out, self.attn(out), mask, h0

    def _attend(
        self, dec: torch.Tensor, enc: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Next-word logits (B, T, V) from decoder states (B, T, H)."""
        scores = torch.bmm(dec, keys.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        context = torch.bmm(torch.softmax(scores, dim=-1), enc)  # (B, T, H)
        mixed = torch.tanh(self.combine(torch.cat([context, dec], dim=-1)))
        return self.out(self.drop(mixed))

    def forward(
        self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        enc, keys, mask, h0 = self.encode(src, src_len)
        dec, _ = self.decoder(self.drop(self.tgt_emb(tgt_in)), h0)
        return self._attend(dec, enc, keys, mask)

    def step(
        self,
        prev: torch.Tensor,
        state: torch.Tensor,
        enc: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: log-probabilities of the next word (B, V), new state."""
        dec, state = self.decoder(self.tgt_emb(prev).unsqueeze(1), state)
        logits = self._attend(dec, enc, keys, mask)[:, 0]
        return torch.log_softmax(logits, dim=-1), state


def _max_target(src_len: int) -> int:
    return min(MAX_TARGET, 2 * src_len + 10)


@torch.inference_mode()
def greedy(model: Seq2Seq, src: list[list[int]]) -> list[list[int]]:
    """The most likely next word at every step, for a batch of encoded sentences."""
    x, lengths = pad_batch(src)
    enc, keys, mask, state = model.encode(x, lengths)
    prev = torch.full((len(src),), BOS, dtype=torch.long)
    done = torch.zeros(len(src), dtype=torch.bool)
    out: list[torch.Tensor] = []
    for _ in range(_max_target(int(lengths.max()))):
        logp, state = model.step(prev, state, enc, keys, mask)
        prev = logp.argmax(dim=-1).masked_fill(done, PAD)
        out.append(prev)
        done |= prev == EOS
        if bool(done.all()):
            break
    steps = torch.stack(out, dim=1).tolist() if out else [[] for _ in src]
    return [[t for t in row if t != PAD] for row in steps]


def _penalty(length: int) -> float:
    return ((5.0 + length) / 6.0) ** LENGTH_ALPHA


@torch.inference_mode()
def beam_search(model: Seq2Seq, src: list[int], beam: int = DEFAULT_BEAM) -> list[int]:
    """The best of ``beam`` hypotheses kept at every step for one encoded sentence."""
    x, lengths = pad_batch([src])
    enc, keys, mask, state = model.encode(x, lengths)
    seqs = torch.full((1, 1), BOS, dtype=torch.long)  # the live hypotheses, BOS first
    scores = torch.zeros(1)
    finished: list[tuple[float, list[int]]] = []
    for _ in range(_max_target(int(lengths[0]))):
        n = seqs.shape[0]
        logp, new_state = model.step(
            seqs[:, -1], state, enc.expand(n, -1, -1), keys.expand(n, -1, -1),
            mask.expand(n, -1),
        )  # fmt: skip
        total = (scores.unsqueeze(1) + logp).reshape(-1)
        top, idx = total.topk(min(2 * beam, total.numel()))
        vocab = logp.shape[1]
        keep_rows, keep_tokens, keep_scores = [], [], []
        for score, flat in zip(top.tolist(), idx.tolist(), strict=True):
            row, token = divmod(flat, vocab)
            if token == EOS:
                words = seqs[row, 1:].tolist()
                finished.append((score / _penalty(len(words) + 1), words))
            else:
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
            if len(keep_rows) == beam:
                break
        if len(finished) >= beam or not keep_rows:
            break
        rows = torch.tensor(keep_rows, dtype=torch.long)
        seqs = torch.cat([seqs[rows], torch.tensor(keep_tokens).unsqueeze(1)], dim=1)
        scores = torch.tensor(keep_scores)
        state = new_state[:, rows]
    if not finished:  # ran out of length: the live hypotheses compete as they are
        finished = [
            (s / _penalty(seqs.shape[1] - 1), seqs[i, 1:].tolist())
            for i, s in enumerate(scores.tolist())
        ]
    return max(finished, key=lambda f: f[0])[1]


def translate(
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    texts: Sequence[str],
    beam: int = DEFAULT_BEAM,
) -> list[str]:
    """English for each Chinese text: greedy where ``beam`` <= 1, else a beam search.
    An empty text (or one of spaces) gives an empty string."""
    beam = max(1, min(int(beam), MAX_BEAM))
    encoded = [src_vocab.encode(zh_tokens(t)[:MAX_SOURCE]) for t in texts]
    out = [""] * len(texts)
    todo = [i for i, ids in enumerate(encoded) if ids]
    model.eval()
    if beam == 1:
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            for i, ids in zip(chunk, greedy(model, [encoded[i] for i in chunk]), strict=True):
                out[i] = detokenize(tgt_vocab.decode(ids))
        return out
    for i in todo:
        out[i] = detokenize(tgt_vocab.decode(beam_search(model, encoded[i], beam)))
    return out


def load_spec(path: str) -> dict[str, Any]:
    """The ``vocab`` artifact: {"zh": [...], "en": [...], "config": {...}, "beam": N}."""
    with open(path, encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec


class Translator(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: Chinese strings in, English strings out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        spec = load_spec(context.artifacts["vocab"])
        self.src_vocab = Vocab(spec["zh"])
        self.tgt_vocab = Vocab(spec["en"])
        self.beam = int(spec.get("beam", DEFAULT_BEAM))
        self.model = Seq2Seq(len(self.src_vocab), len(self.tgt_vocab), **spec["config"])
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    finetune_loss = "seq2seq"

    def finetune_inputs(self, rows: np.ndarray) -> np.ndarray:
        """Chinese texts as source ids (rows, longest), padded with PAD."""
        texts = [str(t) for t in np.asarray(rows, dtype=object).reshape(len(rows), -1)[:, 0]]
        ids = [self.src_vocab.encode(zh_tokens(t)[:MAX_SOURCE]) for t in texts]
        return pad_batch(ids)[0].numpy()

    def finetune_targets(self, labels: np.ndarray) -> np.ndarray:
        """English texts as target ids: BOS, the words, EOS; padded with PAD."""
        ids = [
            [BOS, *self.tgt_vocab.encode(en_tokens(str(t))[:MAX_TARGET]), EOS]
            for t in np.asarray(labels, dtype=object).ravel()
        ]
        return pad_batch(ids)[0].numpy()

    @staticmethod
    def finetune_forward(module: nn.Module, x: torch.Tensor, y_in: torch.Tensor) -> torch.Tensor:
        """The teacher-forced logits; ``module`` may be DDP's wrapper, so it is called."""
        lengths = (x != PAD).sum(dim=1).clamp(min=1)
        logits: torch.Tensor = module(x, lengths, y_in)
        return logits

    # np.ndarray on purpose: MLflow infers a Tensor('str', (-1,)) signature from the
    # example, as for the sentiment example, so {"inputs": ["..."]} arrives as a 1-D
    # array of strings and the platform's text check refuses numbers.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> list[str]:
        texts = [str(t) for t in np.asarray(model_input, dtype=object).ravel()]
        beam = (params or {}).get("beam")
        beam = self.beam if beam is None else int(beam)
        if not 1 <= beam <= MAX_BEAM:
            raise ValueError(f"got {beam} for beam: 1 (greedy) to {MAX_BEAM}")
        return translate(self.model, self.src_vocab, self.tgt_vocab, texts, beam=beam)


mlflow.models.set_model(Translator())
