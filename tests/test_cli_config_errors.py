"""Mistakes in a study config file or a --set option: one readable message, exit 2, no traceback."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from graftlab.cli import app
from graftlab.testing import assert_user_error


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", ["validate", "study"])
def test_a_folder_given_as_config_is_named_as_a_folder(tmp_path, write_study, command):
    write_study()
    assert_user_error(_run(command, tmp_path), f"{tmp_path} is a folder; a study config YAML file is expected",
                "It holds study.yaml")


@pytest.mark.parametrize("command", ["validate", "study"])
def test_a_config_that_is_not_utf8_names_the_byte_and_its_line(write_study, command):
    path = write_study()
    path.write_bytes(b"# caf\xe9 reviews\n" + path.read_bytes())  # a latin-1 e-acute in a comment
    assert_user_error(_run(command, path), "is not UTF-8 text: the byte 0xe9 at offset 5 (line 1)", "Save the file as UTF-8")


def test_set_replaces_a_list_entry_by_its_position(write_study):
    path = write_study()
    cfg = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**cfg, "strategies": ["majority", "majority"]}))
    duplicate = _run("validate", path)
    assert_user_error(duplicate, "listed twice")
    fixed = _run("validate", path, "--set", "strategies.1=tfidf_logreg")
    assert fixed.exit_code == 0, fixed.output


@pytest.mark.parametrize(
    ("override", "phrases"),
    [
        ("strategies.finetune.trainable_layers=2", ["'strategies' is a list of 2 entries", "got 'finetune'",
                                                    "--set strategies.0=VALUE", "--set 'strategies=[a, b]'"]),
        ("strategies.7=full", ["a position from 0 to 1; got '7'"]),
        ("eval.seeds.x=2", ["'eval.seeds' is 1, not a mapping", "Set 'eval.seeds' itself"]),
        ("eval={seeds: 1", ["--set eval: the value '{seeds: 1' is not valid YAML", "Close every bracket"]),
        ("=3", ["--set expects KEY=VALUE", "Got '=3' instead"]),
        ("eval..seeds=3", ["--set expects KEY=VALUE", "Got 'eval..seeds=3' instead"]),
    ],
)
def test_a_bad_set_option_names_the_key_and_what_to_write(write_study, override, phrases):
    path = write_study()
    cfg = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**cfg, "strategies": ["majority", "tfidf_logreg"], "eval": {"seeds": 1}}))
    assert_user_error(_run("validate", path, "--set", override), *phrases)


def test_a_rule_across_keys_is_not_reported_against_the_whole_input():
    from graftlab.core.errors import ConfigError
    from graftlab.serving import ServeConfig

    with pytest.raises(ConfigError) as err:
        ServeConfig.from_dict({"model": "m", "shadow": "a", "canary": "b"}, source="serve options")
    assert str(err.value) == "Invalid serve options: give either a shadow or a canary challenger, not both."


def test_a_headline_metric_outside_the_catalogue_is_refused_with_the_metrics_that_can_rank(write_study):
    path = write_study()
    assert_user_error(_run("validate", path, "--set", "eval.metric=precision"), "'eval.metric' parameter is invalid",
                      "'precision' is not a known metric", "eval.metric can use accuracy, macro_f1, macro_precision")
    assert_user_error(_run("validate", path, "--set", "eval.metric=latency_ms_b1"),
                      "'latency_ms_b1' is measured on the model, not from predictions")


@pytest.mark.parametrize(
    ("override", "phrases"),
    [
        ("backbones.0=minilm-l6", ["--set backbones.0: the config has no 'backbones' list",
                                   "use --set 'backbones=[minilm-l6]'", "or add 'backbones' to the config"]),
        ("strategies.0.lora.r=8", ["the config has no 'strategies' list", "--set 'strategies=[{lora: {r: 8}}]'"]),
        ("eval.gates.0=macro_f1 >= 0.8", ["the config has no 'eval.gates' list",
                                          "--set 'eval.gates=[macro_f1 >= 0.8]'"]),
    ],
)
def test_set_on_a_list_the_config_does_not_have_says_what_to_write(write_study, override, phrases):
    result = _run("validate", write_study(), "--set", override)  # the written config has no backbones, strategies or eval
    assert_user_error(result, *phrases)
    assert "valid list" not in result.output and "dictionary" not in result.output


def test_reading_a_config_leaves_the_callers_strategy_dict_as_it_was():
    from graftlab.core.config import StudyConfig

    strategy = {"finetune": {"trainable_layers": 2, "label": "top-2"}}
    data = {"source": {"kind": "csv", "path": "x.csv"}, "text": "t", "label": "y"}
    for _ in range(2):  # the same dict, read twice, gives the same labelled strategy
        cfg = StudyConfig.from_dict({"name": "s", "data": data, "strategies": [strategy]})
        assert cfg.strategies[0].display_name == "top-2"
    assert strategy == {"finetune": {"trainable_layers": 2, "label": "top-2"}}


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """``levels`` anchors, each a list of ``width`` references to the one before: width**levels leaves once expanded."""
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["strategies", "text"])
def test_a_yaml_alias_bomb_is_refused_quickly(write_study, where):
    import subprocess
    import sys
    import time

    path = write_study()
    bomb = _alias_bomb()
    if where == "strategies":
        path.write_text(bomb + path.read_text() + "strategies: *a8\n")
    else:
        path.write_text(bomb + path.read_text().replace("text: review", "text: *a8"))
    started = time.monotonic()
    # A subprocess with a timeout and a memory cap: on the old code this ran for minutes and past 6 GB.
    done = subprocess.run([sys.executable, "-m", "graftlab.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=60,
                          preexec_fn=lambda: __import__("resource").setrlimit(
                              __import__("resource").RLIMIT_AS, (2 << 30, 2 << 30)))
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "expands to more than" in output and str(path) in output, output
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("text", ["name: x\ndata: &a [*a]\n", "name: " + "[" * 3000 + "]" * 3000 + "\n"],
                         ids=["recursive-alias", "deep-nesting"])
def test_a_yaml_nested_without_bound_is_refused(tmp_path, text):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    assert_user_error(_run("validate", path), f"{path} nests deeper than 64 levels")
