"""Example ``translate``: Chinese to English with a GRU encoder-decoder and attention.

Trained on ``pairs.tsv`` (Chinese-English sentence pairs written by ``make_corpus.py``
from templates; self-generated, Apache-2.0). A seeded tenth of the pairs is held out:
no held-out Chinese sentence is in the training split, and the vocabularies are built
from the training split only. The held-out BLEU (sacrebleu, 13a tokens) of greedy
decoding and of the beam search goes into the metrics (the version's tags).

Logged with MLflow "models from code" (``model.py``): a ``state_dict`` (``weights``)
and a JSON file of the vocabularies and layer sizes (``vocab``); nothing is pickled.
Input: a list / 1-D array of Chinese strings. Output: one English string per input.
The signature declares one param, ``beam`` (default: the trained width), so a request
``{"inputs": [...], "params": {"beam": 1}}`` is decoded greedily.

Run ``python -m examples.translate.train`` from the repository root to train and register.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from examples._common import TrainedExample, artifact_dir, main
from examples.translate.model import (
    BOS,
    DEFAULT_BEAM,
    EOS,
    PAD,
    Seq2Seq,
    Vocab,
    en_tokens,
    pad_batch,
    translate,
    zh_tokens,
)

logger = logging.getLogger(__name__)

NAME = "translate"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
DATA_PATH = Path(__file__).with_name("pairs.tsv")
SEED = 0
TEST_SIZE = 0.1
EPOCHS = 20
BATCH_SIZE = 64
LR = 3e-3
CLIP = 1.0
CONFIG = {"emb": 96, "hidden": 192, "dropout": 0.1}
# Two held-out sentences (see test_examples: neither is in the training split).
SAMPLE_INPUTS: list = ["王太太上个月在超市买水果了。", "张先生明天晚上会去广州吗？"]

Pair = tuple[str, str]


def load_pairs(path: Path = DATA_PATH) -> list[Pair]:
    """(Chinese, English) pairs from the tab-separated corpus, in file order."""
    pairs = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            zh, sep, en = line.rstrip("\n").partition("\t")
            if not sep or not zh.strip() or not en.strip():
                raise ValueError(f"{path}:{number}: expected 'Chinese<TAB>English'")
            pairs.append((zh.strip(), en.strip()))
    return pairs


def split(
    pairs: list[Pair], test_size: float = TEST_SIZE, seed: int = SEED
) -> tuple[list[Pair], list[Pair]]:
    """Training and held-out pairs (seeded); a pair whose Chinese is also held out is
    dropped from training, so no held-out sentence is learnt verbatim."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test = max(1, int(round(len(pairs) * test_size)))
    test = [pairs[i] for i in order[:n_test]]
    held = {zh for zh, _ in test}
    train = [pairs[i] for i in order[n_test:] if pairs[i][0] not in held]
    return train, test


def _encode(pairs: list[Pair], src: Vocab, tgt: Vocab) -> list[tuple[list[int], list[int]]]:
    return [(src.encode(zh_tokens(zh)), tgt.encode(en_tokens(en))) for zh, en in pairs]


def _batch(rows: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, ...]:
    """Source, its lengths, the decoder's input (BOS + words) and target (words + EOS)."""
    src, lengths = pad_batch([r[0] for r in rows])
    tgt_in, _ = pad_batch([[BOS, *r[1]] for r in rows])
    tgt_out, _ = pad_batch([[*r[1], EOS] for r in rows])
    return src, lengths, tgt_in, tgt_out


def fit(
    model: Seq2Seq,
    rows: list[tuple[list[int], list[int]]],
    *,
    epochs: int,
    seed: int = SEED,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
) -> list[float]:
    """Teacher-forced training with Adam; the mean loss (per target word) of each epoch.

    Batches group sentences of similar length (less padding): the rows are shuffled,
    sorted by length within windows of 20 batches, and the batches shuffled again.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs))
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    losses = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(rows), generator=generator).tolist()
        window = batch_size * 20
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(rows[i][0]))
            batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
        total, words = 0.0, 0
        for b in torch.randperm(len(batches), generator=generator).tolist():
            src, lengths, tgt_in, tgt_out = _batch([rows[i] for i in batches[b]])
            logits = model(src, lengths, tgt_in)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
            n = int((tgt_out != PAD).sum())
            optimiser.zero_grad()
            (loss / n).backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimiser.step()
            total += float(loss.detach())
            words += n
        scheduler.step()
        losses.append(total / max(words, 1))
        logger.info("translate epoch %d/%d loss %.4f", epoch + 1, epochs, losses[-1])
    return losses


def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) of the hypotheses against one reference each."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def train(
    epochs: int = EPOCHS,
    limit: int | None = None,
    beam: int = DEFAULT_BEAM,
    seed: int = SEED,
    config: dict | None = None,
) -> TrainedExample:
    """Train on the corpus and score the held-out split.

    ``limit`` keeps only the first ``limit`` training pairs and at most ``limit // 4``
    held-out pairs (a quick run, e.g. for unit tests); ``config`` overrides the layer
    sizes (``emb``, ``hidden``, ``dropout``).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    # At most two threads (as the other examples); fewer where OMP_NUM_THREADS says so.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    train_pairs, test_pairs = split(load_pairs(), seed=seed)
    if limit is not None:
        train_pairs = train_pairs[:limit]
        test_pairs = test_pairs[: max(1, limit // 4)]
    src_vocab = Vocab.build(zh_tokens(zh) for zh, _ in train_pairs)
    tgt_vocab = Vocab.build(en_tokens(en) for _, en in train_pairs)
    sizes = {**CONFIG, **(config or {})}
    model = Seq2Seq(len(src_vocab), len(tgt_vocab), **sizes)
    losses = fit(model, _encode(train_pairs, src_vocab, tgt_vocab), epochs=epochs, seed=seed)
    train_s = time.perf_counter() - started

    model.eval()
    sources = [zh for zh, _ in test_pairs]
    references = [en for _, en in test_pairs]
    started = time.perf_counter()
    greedy_out = translate(model, src_vocab, tgt_vocab, sources, beam=1)
    greedy_s = time.perf_counter() - started
    started = time.perf_counter()
    beam_out = translate(model, src_vocab, tgt_vocab, sources, beam=beam)
    beam_s = time.perf_counter() - started
    metrics = {
        "bleu_greedy": bleu(greedy_out, references),
        "bleu_beam": bleu(beam_out, references),
        "beam_width": float(beam),
        "exact_match_beam": float(
            np.mean([h == r for h, r in zip(beam_out, references, strict=True)])
        ),
        "final_train_loss": losses[-1] if losses else float("nan"),
        "first_train_loss": losses[0] if losses else float("nan"),
        "n_train": float(len(train_pairs)),
        "n_test": float(len(test_pairs)),
        "n_params": float(sum(p.numel() for p in model.parameters())),
        "train_seconds": train_s,
        "greedy_ms_per_sentence": 1000 * greedy_s / max(1, len(sources)),
        "beam_ms_per_sentence": 1000 * beam_s / max(1, len(sources)),
    }
    logger.info(
        "translate held-out BLEU %.2f greedy, %.2f beam %d on %d pairs (%.0fs training)",
        metrics["bleu_greedy"], metrics["bleu_beam"], beam, len(test_pairs), train_s,
    )  # fmt: skip

    out = artifact_dir(NAME)
    weights = out / "weights.pt"
    vocab = out / "vocab.json"
    torch.save(model.state_dict(), weights)
    vocab.write_text(
        json.dumps(
            {"zh": src_vocab.itos, "en": tgt_vocab.itos, "config": sizes, "beam": beam},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    from mlflow.models import infer_signature

    example = np.array(SAMPLE_INPUTS, dtype=str)
    answers = translate(model, src_vocab, tgt_vocab, SAMPLE_INPUTS, beam=beam)
    return TrainedExample(
        model=MODEL_CODE,
        input_example=example,
        signature=infer_signature(example, answers, params={"beam": beam}),
        artifacts={"weights": str(weights), "vocab": str(vocab)},
        metrics=metrics,
        description=(
            "Chinese-to-English translation: GRU encoder-decoder with attention "
            "(characters in, words out), beam search of width "
            f"{beam}, trained on the template corpus examples/translate/pairs.tsv "
            "(everyday sentences only). Input: list of Chinese strings. "
            "Output: one English string per input."
        ),
    )


if __name__ == "__main__":
    main(NAME, train)
