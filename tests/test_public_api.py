"""What a newcomer finds from Python: ``dir(graftlab)`` and ``graftlab.__all__`` list the public API, every name of
it resolves and has a docstring, and so has every public method and property of its classes."""

import inspect
import subprocess
import sys

import pytest

import graftlab

ENTRY_POINTS = {
    "Study", "StudyResult", "StudyConfig", "load_config", "load_results", "GraftClassifier", "load_model",
    "PackagedModel", "Evaluation",
    "list_models", "promote", "rollback", "resolve_model",  # the registry
    "create_app", "ServeConfig", "run_monitor", "retrain",  # serving, monitoring, retraining
}
PUBLIC = [name for name in graftlab.__all__ if name != "__version__"]


def test_all_and_dir_list_the_public_api():
    assert ENTRY_POINTS <= set(graftlab.__all__)
    assert set(graftlab.__all__) <= set(dir(graftlab))
    assert not [n for n in dir(graftlab) if n.startswith("_") and n != "__version__"]  # no noise to scroll past
    assert len(graftlab.__all__) == len(set(graftlab.__all__))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves_and_has_a_docstring(name):
    obj = getattr(graftlab, name)
    assert inspect.getdoc(obj), f"graftlab.{name} has no docstring"
    if inspect.isclass(obj):
        missing = [attr for attr, value in vars(obj).items()
                   if not attr.startswith("_") and (callable(value) or isinstance(value, property | classmethod | staticmethod))
                   and not inspect.getdoc(getattr(value, "fget", None) or getattr(value, "__func__", value))]
        assert not missing, f"public methods of graftlab.{name} without a docstring: {missing}"


def test_study_from_yaml_says_what_it_does():
    assert "YAML" in (graftlab.Study.from_yaml.__doc__ or "")


def test_import_and_dir_load_nothing_heavy():
    code = ("import sys, graftlab; dir(graftlab); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'pandas', 'sklearn') or m.startswith('graftlab.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
