"""A packaged model is refused when a weight file changes, and nothing in it (or in MLflow) is a pickle."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from graftlab.core.artifacts import MANIFEST, load_json
from graftlab.core.errors import ArtifactError
from graftlab.packaging import load_model

PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt"}


def pickle_like(path: Path) -> str | None:
    """Why ``path`` looks like a pickle (name, pickle protocol header, or a torch.save zip), else None."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return f"suffix {path.suffix}"
    head = path.read_bytes()[:4]
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 0x05:  # PROTO opcode + protocol 0..5
        return "pickle protocol header"
    if head == b"PK\x03\x04":
        return "zip archive (torch.save format)"
    return None


def _weights(folder: Path) -> Path:
    found = [p for p in folder.rglob("*.safetensors") if p.name in ("model.safetensors", "weights.safetensors")]
    assert found, f"no weight file in {folder}"
    return found[0]


def test_the_checker_recognises_pickles(tmp_path):
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        p = tmp_path / f"p{protocol}.data"
        p.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=protocol))
        assert pickle_like(p) == "pickle protocol header"
    (tmp_path / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert pickle_like(tmp_path / "w.safetensors") is None


def test_no_file_in_a_package_or_its_mlflow_copy_is_a_pickle(tracked, mlflow_client, tmp_path):
    folders = [tracked.rich.run_dir / "model", tracked.cheap.run_dir / "model"]
    folders.append(Path(mlflow_client.download_artifacts(tracked.rich.info["mlflow_run_id"], "model", str(tmp_path))))
    for folder in folders:
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert any(p.suffix == ".safetensors" for p in files)
        bad = {str(p.relative_to(folder)): why for p in files if (why := pickle_like(p))}
        assert not bad, bad


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_changed_weight_file_is_refused(tracked, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(tracked.rich.run_dir / "model", folder)
    load_model(folder)  # intact copy loads
    weights = _weights(folder)
    data = bytearray(weights.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 7]
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=weights.name):
        load_model(folder)


def test_a_file_the_manifest_does_not_list_is_refused(tracked, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tracked.rich.run_dir / "model", folder)
    listed = set(load_json(folder / MANIFEST)["files"])
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert listed == on_disk  # the export lists every file it writes, nested ones included
    extra = folder / "backbone" / "special_tokens_map.json"  # what a backbone folder would read at load time
    extra.parent.mkdir(exist_ok=True)
    extra.write_text('{"pad_token": "great", "cls_token": "great"}')
    with pytest.raises(ArtifactError, match="backbone/special_tokens_map.json") as err:
        load_model(folder)
    assert "not listed" in str(err.value)


def test_a_listed_file_that_is_missing_is_refused(tracked, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tracked.rich.run_dir / "model", folder)
    gone = sorted(load_json(folder / MANIFEST)["files"])[-1]
    (folder / gone).unlink()
    with pytest.raises(ArtifactError, match=gone):
        load_model(folder)
