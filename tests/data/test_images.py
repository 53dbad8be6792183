"""Image data: a folder per class, a CSV with image paths, IDX files; bad input gives a DataError saying what to fix."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graftlab.core.config import DataConfig, load_config
from graftlab.core.errors import DataError, GraftError
from graftlab.data.images import brightness_quartiles, read_idx
from graftlab.data.prepare import prepare_data

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _png(path: Path, value: int, rgb: bool = False, size: tuple[int, int] = (10, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3) if rgb else (size[1], size[0]), value, np.uint8)
    arr[0, 0] = (value + 7 * len(path.name)) % 256  # every file distinct: no leakage between splits
    Image.fromarray(arr).save(path)


def _folder(root: Path, per_class: int = 6) -> Path:
    for c, cls in enumerate(["cat", "dog"]):
        for i in range(per_class):
            _png(root / cls / f"{i}.png", 20 + 30 * c + i, rgb=bool(i % 2))
    return root


def _idx(path: Path, array: np.ndarray) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _split(**kw) -> dict:
    return {"split": {"train": 0.5, "val": 0.25, "test": 0.25, "seed": 0}, "checks": {"min_per_class": 2}, **kw}


def test_folder_per_class_loads_grayscale_and_rgb_with_brightness_slices(tmp_path):
    cfg = DataConfig(source={"kind": "image_folder", "path": str(_folder(tmp_path / "pets"))},
                     slices=["brightness_quartile"], **_split())
    assert cfg.image == "image" and cfg.modality == "image"
    data = prepare_data(cfg)
    assert data.label_names == ["cat", "dog"]
    assert sum(len(d) for d in data.splits.values()) == 12
    shapes = {x.shape for x in data.full.inputs}
    assert shapes == {(8, 10), (8, 10, 3)} and all(x.dtype == np.uint8 for x in data.full.inputs)
    assert set(data.test.meta["brightness_quartile"]) <= {"Q1 (darkest)", "Q2", "Q3", "Q4 (brightest)"}


def test_image_folder_given_relative_to_the_working_folder(tmp_path, monkeypatch):
    _folder(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    data = prepare_data(DataConfig(source={"kind": "image_folder", "path": "pets"}, **_split()))
    assert len(data.full) == 12 and data.label_names == ["cat", "dog"]


def test_a_table_of_image_file_bytes_as_parquet_and_hugging_face_datasets_write_it(tmp_path):
    from graftlab.data.images import encode_png

    images = [np.full((6, 7), 10 * i, np.uint8) for i in range(12)]
    for i in (3, 9):
        images[i] = np.stack([images[i]] * 3, axis=-1)
    values = [encode_png(x) for x in images]
    for name, column in (("bytes", values), ("hf", [{"bytes": v, "path": None} for v in values])):
        pd.DataFrame({"img": column, "y": ["a", "b"] * 6}).to_parquet(tmp_path / f"{name}.parquet")
        cfg = DataConfig(source={"kind": "parquet", "path": str(tmp_path / f"{name}.parquet")}, image="img", label="y",
                         **_split())
        got = sorted((x.tobytes(), x.shape) for x in prepare_data(cfg).full.inputs)
        assert got == sorted((x.tobytes(), x.shape) for x in images)  # lossless, grayscale and RGB kept
    pd.DataFrame({"img": [b"not an image"] + values[1:], "y": ["a", "b"] * 6}).to_parquet(tmp_path / "bad.parquet")
    bad = DataConfig(source={"kind": "parquet", "path": str(tmp_path / "bad.parquet")}, image="img", label="y", **_split())
    with pytest.raises(DataError, match="row 0: 12 bytes that are not an image file"):
        prepare_data(bad)


def test_csv_with_relative_image_paths(tmp_path):
    _folder(tmp_path / "imgs")
    rows = [{"file": f"imgs/{c}/{i}.png", "kind": c} for c in ("cat", "dog") for i in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "images.csv", index=False)
    (tmp_path / "study.yaml").write_text(
        "name: pets\ndata:\n  source: {kind: csv, path: images.csv}\n  image: file\n  label: kind\n"
        "  split: {train: 0.5, val: 0.25, test: 0.25}\n  checks: {min_per_class: 2}\n"
    )
    cfg = load_config(tmp_path / "study.yaml")
    data = prepare_data(cfg.data)
    assert data.train.modality == "image" and len(data.full) == 12


def test_idx_files_gzipped_or_not_with_class_names(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 6, 6))
    labels = np.arange(24) % 3
    np.testing.assert_array_equal(read_idx(_idx(tmp_path / "x.gz", images)), images)
    np.testing.assert_array_equal(read_idx(_idx(tmp_path / "x", images)), images)
    _idx(tmp_path / "y.gz", labels)
    cfg = DataConfig(source={"kind": "idx", "path": str(tmp_path / "x.gz"), "labels": str(tmp_path / "y.gz"),
                             "class_names": ["a", "b", "c"]}, **_split())
    data = prepare_data(cfg)
    assert data.label_names == ["a", "b", "c"] and data.full.inputs[0].shape == (6, 6)


@pytest.mark.parametrize("problem, match", [
    ("missing_file", r"1 images of the 'file' column .* are missing .*row 0: .*nope\.png.* Fix the paths"),
    ("unreadable", r"cannot be read as images: row 1: .*broken\.png.* Replace or remove those files"),
    ("wrong_column", r"The 'data.image' column 'picture' is not in .* Available columns: file, kind"),
])
def test_bad_image_tables_say_what_to_fix(tmp_path, problem, match):
    _folder(tmp_path / "imgs", per_class=3)
    (tmp_path / "broken.png").write_bytes(b"this is not a png")
    files = [f"imgs/cat/{i}.png" for i in range(3)] + [f"imgs/dog/{i}.png" for i in range(3)]
    if problem == "missing_file":
        files[0] = "imgs/cat/nope.png"
    if problem == "unreadable":
        files[1] = "broken.png"
    pd.DataFrame({"file": files, "kind": ["cat"] * 3 + ["dog"] * 3}).to_csv(tmp_path / "t.csv", index=False)
    cfg = DataConfig(source={"kind": "csv", "path": str(tmp_path / "t.csv")},
                     image="picture" if problem == "wrong_column" else "file", label="kind", **_split())
    with pytest.raises(DataError, match=match):
        prepare_data(cfg)


def test_bad_folders_and_idx_files_say_what_to_fix(tmp_path):
    with pytest.raises(DataError, match="image folder .* does not exist. It must hold one sub-folder of images per class"):
        prepare_data(DataConfig(source={"kind": "image_folder", "path": str(tmp_path / "none")}))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images in class sub-folders"):
        prepare_data(DataConfig(source={"kind": "image_folder", "path": str(tmp_path / "empty")}))
    (tmp_path / "junk.gz").write_bytes(gzip.compress(b"\x12\x34hello"))
    with pytest.raises(DataError, match="is not an IDX file"):
        read_idx(tmp_path / "junk.gz")
    _idx(tmp_path / "x", np.zeros((4, 3, 3)))
    _idx(tmp_path / "y", np.zeros(5))
    with pytest.raises(DataError, match="4 images but the label file has 5 labels"):
        prepare_data(DataConfig(source={"kind": "idx", "path": str(tmp_path / "x"), "labels": str(tmp_path / "y")}))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        read_idx("/nowhere/fashion-mnist/train-images-idx3-ubyte.gz")
    (tmp_path / "s.yaml").write_text("name: x\ndata:\n  source: {kind: idx, path: a}\n")
    with pytest.raises(GraftError, match="needs 'labels'"):
        load_config(tmp_path / "s.yaml")


def test_identical_images_in_two_splits_are_caught_as_leakage(tmp_path):
    arrays = [np.full((4, 4), i, np.uint8) for i in range(12)]
    arrays[11] = arrays[0].copy()  # same pixels, same label
    frame = pd.DataFrame({"image": arrays, "label": ["a", "b"] * 6})
    frame.loc[11, "label"] = "a"
    cfg = DataConfig(image="image", checks={"leakage": "drop", "min_per_class": 2}, split={"train": 0.5, "val": 0.25, "test": 0.25})
    data = prepare_data(cfg, frame=frame)
    in_train = {x.tobytes() for x in data.train.inputs}
    assert not any(x.tobytes() in in_train for x in list(data.val.inputs) + list(data.test.inputs))


def test_brightness_quartiles_label_every_row():
    q = brightness_quartiles(np.linspace(0, 1, 8))
    assert list(q) == ["Q1 (darkest)"] * 2 + ["Q2"] * 2 + ["Q3"] * 2 + ["Q4 (brightest)"] * 2


@pytest.mark.integration
@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (make fashion-mnist, or apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_example_config_loads():
    cfg = load_config(Path(__file__).parents[2] / "examples" / "fashion_mnist.yaml")
    data = prepare_data(cfg.data)
    assert len(data.label_names) == 10 and data.train.inputs[0].shape == (28, 28)
    assert data.summary["class_counts"]["train"]["Trouser"] == 100
