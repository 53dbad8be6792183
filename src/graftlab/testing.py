"""Helpers for tests and examples: a tiny random BERT (a local HF folder) and a tiny random CNN (a small-CNN folder).

Useful to users too: a pipeline can be exercised end to end in seconds before the real backbone runs.
"""

from __future__ import annotations

import string
from pathlib import Path

__all__ = ["make_tiny_bert", "make_tiny_cnn", "synthetic_reviews", "synthetic_images", "TINY_WORDS", "assert_user_error"]

TINY_WORDS = (
    "good great love excellent tasty best nice fresh delicious perfect happy recommend "
    "bad awful terrible worst stale bland disappointed poor broken never waste money "
    "the a an and or but not is was it this that i you we they my our to of in for on with "
    "product food taste coffee tea dog cat snack price box bag order"
).split()


def make_tiny_bert(folder: str | Path, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Write a tiny BertModel (random weights) with a small WordPiece vocabulary to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list(string.ascii_lowercase) + list(string.digits) + list(".,!?'-")
    vocab += TINY_WORDS + [f"##{c}" for c in string.ascii_lowercase]
    vocab = list(dict.fromkeys(vocab))
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    tok.save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(folder))
    return folder


def synthetic_reviews(n: int = 240, seed: int = 0, noise: float = 0.15):
    """A small two-class review-like DataFrame (columns review, score, product) the tiny BERT can learn.

    Each text mixes filler words with sentiment words of its class; ``noise`` adds one word of the
    other class to some rows, so no strategy is perfect.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    pos, neg = TINY_WORDS[:12], TINY_WORDS[12:23]
    filler = TINY_WORDS[23:]
    rows = []
    for i in range(n):
        label = "great" if i % 3 else "other"
        words = list(rng.choice(filler, 6)) + list(rng.choice(pos if label == "great" else neg, 2))
        if rng.random() < noise:
            words += list(rng.choice(neg if label == "great" else pos, 1))
        rng.shuffle(words)
        rows.append({"review": " ".join(words) + f" {i}", "score": label, "product": f"p{i % 7}"})
    return pd.DataFrame(rows)


def make_tiny_cnn(folder: str | Path, channels: tuple[int, ...] = (4, 8, 8), hidden: int = 16, image_size: int = 16,
                  seed: int = 0) -> Path:
    """Write a tiny SmallCNN (random weights, BatchNorm with non-trivial running statistics) to ``folder``."""
    import torch

    from .backbones.small_cnn import SmallCNN, save_small_cnn

    torch.manual_seed(seed)
    model = SmallCNN(channels, hidden)
    with torch.no_grad():  # running stats away from (0, 1), so a test can tell whether they moved
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    spec = {"channels": list(channels), "hidden": hidden, "image_size": image_size, "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25], "name": "tiny-cnn", "license": "Apache-2.0"}
    return save_small_cnn(folder, model, spec)


def synthetic_images(n: int = 240, size: int = 12, seed: int = 0, noise: float = 0.15):
    """A small three-class image DataFrame (columns image, shape, brightness_level) a tiny CNN can learn.

    Classes are a bright square, a horizontal bar and a vertical bar on a dark background (grayscale
    uint8 arrays), with random position jitter and pixel noise; every third image is colour (RGB).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    classes = ["square", "hbar", "vbar"]
    rows = []
    for i in range(n):
        label = classes[i % 3]
        img = rng.normal(40, 255 * noise, (size, size)).clip(0, 255)
        a, b = rng.integers(1, 4, size=2)
        if label == "square":
            img[a : a + size // 2, b : b + size // 2] = 220
        elif label == "hbar":
            img[a + 2 : a + 5, 1:-1] = 220
        else:
            img[1:-1, b + 2 : b + 5] = 220
        img = img.astype(np.uint8)
        if i % 3 == 1:
            img = np.stack([img, img // 2, img], axis=-1)
        rows.append({"image": img, "shape": label, "brightness_level": "dim" if img.mean() < 80 else "bright"})
    return pd.DataFrame(rows)


def assert_user_error(result, *phrases: str) -> None:
    """A CLI result (typer's ``CliRunner``) that reports a user error: exit code 2, no traceback, and every phrase
    in its output (compared with the line wrapping removed)."""
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in text, text
