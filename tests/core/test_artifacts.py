"""A manifest covers every file of its folder: unlisted, missing and changed files are refused by name."""

from __future__ import annotations

import pytest

from graftlab.core.artifacts import verify_manifest, write_manifest
from graftlab.core.errors import ArtifactError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "sub" / "b.json").write_text("[1]")
    write_manifest(tmp_path)
    return tmp_path


def test_every_file_is_listed_recursively(folder):
    assert set(verify_manifest(folder)["files"]) == {"a.json", "sub/b.json"}


def test_an_unlisted_file_is_refused(folder):
    (folder / "sub" / "special_tokens_map.json").write_text('{"cls_token": "great"}')
    with pytest.raises(ArtifactError, match="sub/special_tokens_map.json.*not listed"):
        verify_manifest(folder)


def test_an_unlisted_empty_folder_is_not_a_file(folder):
    (folder / "empty").mkdir()
    verify_manifest(folder)


def test_a_missing_file_is_refused(folder):
    (folder / "sub" / "b.json").unlink()
    with pytest.raises(ArtifactError, match="sub/b.json.*missing"):
        verify_manifest(folder)


def test_a_changed_file_is_refused(folder):
    (folder / "sub" / "b.json").write_text("[2]")
    with pytest.raises(ArtifactError, match="sub/b.json.*sha256"):
        verify_manifest(folder)
