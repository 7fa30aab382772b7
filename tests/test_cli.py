"""The ``sktransfer`` command line: round trips on real images, errors, exit codes."""

import argparse
import csv
import subprocess
import sys

import numpy as np
import pytest

from sktransfer.cli import EXIT_INPUT, EXIT_OUTPUT, EXIT_USAGE, build_parser, main
from sktransfer.datasets import make_faces_folder


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A class-per-subfolder folder of real images: 8 faces and 8 non-faces."""
    root = tmp_path_factory.mktemp("faces")
    return make_faces_folder(root, n_train_per_class=8, image_size=32)


@pytest.fixture(scope="module")
def fitted(faces, lite0_weights, tmp_path_factory):
    """A model fitted by ``sktransfer fit`` with real pretrained weights."""
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    code = main(
        [
            "fit",
            str(faces / "train"),
            "-o",
            str(out),
            "--model",
            "timm:tf_efficientnet_lite0",
            "--weights",
            str(lite0_weights),
            "--image-size",
            "32",
            "--test-size",
            "0.25",
            "-q",
        ]
    )
    assert code == 0
    return out


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_help_lists_commands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("fit", "predict", "embed", "demo", "Exit codes", "trust"):
        assert word in out
    for command in ("fit", "predict", "embed", "demo"):
        assert main([command, "--help"]) == 0


@pytest.mark.parametrize("method", ["probe", "finetune"])
def test_fit_options_left_unset_keep_the_estimators_defaults(method, capsys):
    from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
    from sktransfer._cli_commands import build_estimator
    from sktransfer.cli import build_parser

    args = build_parser().parse_args(
        ["fit", "d", "-o", "m.joblib", "--method", method, "-q"]
    )
    estimator = build_estimator(args)
    if method == "probe":
        estimator, reference = estimator.steps[0][1], PretrainedFeatureExtractor()
        params = ["model", "weights", "image_size", "batch_size", "device"]
    else:
        reference = FineTunedClassifier()
        params = ["model", "weights", "batch_size", "freeze", "max_epochs", "lr"]
    for name in params:
        assert estimator.get_params()[name] == reference.get_params()[name], name
    # --help shows the same defaults, read from the estimators.
    assert main(["fit", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"default: {FineTunedClassifier().max_epochs}" in out
    assert f"default: {FineTunedClassifier().lr}" in out
    assert "auto with --method probe, 32 with --method finetune" in out


def test_fit_reports_accuracy_and_saves(fitted, capsys):
    import joblib

    model = joblib.load(fitted)
    assert list(model.classes_) == ["face", "not_face"]
    assert not _leftovers(fitted.parent)


def test_predict_writes_csv(fitted, faces, tmp_path):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(fitted), str(faces / "val"), "-o", str(out), "-q"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 184  # 92 validation images per class
    assert set(rows[0]) == {"path", "prediction"}
    truth = ["not_face" if "not_face" in r["path"] else "face" for r in rows]
    accuracy = np.mean([r["prediction"] == t for r, t in zip(rows, truth, strict=True)])
    assert accuracy > 0.8  # real pretrained features, 6 labels per class


def test_predict_to_stdout_with_proba(fitted, faces, capsys):
    image = next((faces / "val" / "face").iterdir())
    assert main(["predict", str(fitted), str(image), "--proba", "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "path,prediction,proba_face,proba_not_face"
    path, _, p0, p1 = lines[1].split(",")
    assert path == str(image)
    assert float(p0) + float(p1) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_embed(faces, lite0_weights, tmp_path, suffix, capsys):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"features{suffix}"
    args = ["embed", str(faces / "train"), "-o", str(out), "-q", "--image-size", "32"]
    args += ["--model", "timm:tf_efficientnet_lite0", "--weights", str(lite0_weights)]
    assert main(args) == 0
    if suffix == ".npy":
        features = np.load(out)
        assert features.shape == (16, 1280) and features.dtype == np.float32
    else:
        import pandas as pd

        frame = pd.read_parquet(out)
        assert frame.shape == (16, 2 + 1280)
        assert list(frame["label"].unique()) == ["face", "not_face"]
    assert not _leftovers(tmp_path)


def test_fit_finetune(faces, tmp_path):
    pytest.importorskip("sktransfer.classifier")
    out = tmp_path / "ft.joblib"
    args = ["fit", str(faces / "train"), "-o", str(out), "--method", "finetune"]
    args += ["--model", "resnet18", "--weights", "none", "--image-size", "32"]
    args += ["--freeze", "backbone", "--epochs", "1", "--test-size", "0", "-q"]
    assert main(args) == 0
    import joblib

    model = joblib.load(out)
    assert type(model).__name__ == "FineTunedClassifier"
    assert len(model.history_) == 1


def _folder(root, spec):
    """Make root/<class>/<n files>; spec maps class names to counts."""
    from PIL import Image

    for name, n in spec.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (16, 16), (i * 20, 0, 0)).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing", "not found"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "No images found"),
        (lambda tmp: _folder(tmp / "one", {"cats": 3}), "at least 2"),
    ],
    ids=["missing", "empty", "one-class"],
)
def test_fit_bad_folders(tmp_path, capsys, make, message):
    out = tmp_path / "model.joblib"
    code = main(["fit", str(make(tmp_path)), "-o", str(out), "--weights", "none"])
    assert code == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_fit_unreadable_image_is_named_and_nothing_written(tmp_path, capsys):
    root = _folder(tmp_path / "data", {"a": 4, "b": 4})
    (root / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "model.joblib"
    args = ["fit", str(root), "-o", str(out), "--weights", "none"]
    args += ["--image-size", "16", "--test-size", "0", "-q"]
    assert main(args) == EXIT_INPUT
    assert "broken.jpg" in capsys.readouterr().err
    assert not out.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize(
    "output, code",
    [
        ("nodir/model.joblib", EXIT_OUTPUT),
        (".", EXIT_OUTPUT),
        ("model.pkl", EXIT_USAGE),
    ],
)
def test_fit_bad_output(tmp_path, capsys, output, code, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _folder(tmp_path / "data", {"a": 2, "b": 2})
    assert main(["fit", str(root), "-o", output, "--weights", "none"]) == code
    assert "error" in capsys.readouterr().err


def test_fit_readonly_output_folder(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    root = _folder(tmp_path / "data", {"a": 2, "b": 2})
    code = main(["fit", str(root), "-o", str(ro / "m.joblib"), "--weights", "none"])
    assert code == EXIT_OUTPUT


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "d", "-o", "m.joblib", "--freeze", "backbone"],
        ["fit", "d", "-o", "m.joblib", "--method", "finetune", "--freeze", "top"],
        ["fit", "d", "-o", "m.joblib", "--test-size", "1.5"],
        ["fit", "d"],
        ["frobnicate"],
    ],
)
def test_usage_errors(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    _folder(tmp_path / "d", {"a": 2, "b": 2})
    assert main(args) == EXIT_USAGE


def test_predict_errors(fitted, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.joblib"), "x.png"]) == EXIT_INPUT
    assert "not found" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["predict", str(fitted), str(text)]) == EXIT_INPUT
    assert "Not an image" in capsys.readouterr().err
    bad_model = tmp_path / "bad.joblib"
    bad_model.write_bytes(b"garbage")
    assert main(["predict", str(bad_model), str(text)]) == EXIT_INPUT


def test_demo_small(tmp_path, lite0_weights, monkeypatch, capsys):
    # The demo reads the weights from $SKTRANSFER_HOME; point it at the
    # session's converted copy so nothing is written to the home folder.
    monkeypatch.setenv("SKTRANSFER_HOME", str(lite0_weights.parent))
    out = tmp_path / "demo"
    args = ["demo", "--output-dir", str(out), "--n-train", "20", "--n-test", "20"]
    # The figure must not switch the process's matplotlib backend: start from
    # one that is not Agg, so a matplotlib.use("Agg") would show.
    matplotlib = pytest.importorskip("matplotlib")
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        assert main([*args, "--image-size", "32", "-q"]) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    printed = capsys.readouterr().out
    assert "raw pixels" in printed and "predictions identical: yes" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "demo.png",
        "model.joblib",
        "results.json",
    ]


def test_console_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "sktransfer", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip()


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_no_heavy_module(argv):
    # What makes `sktransfer --help` take seconds is importing torch & co.
    script = (
        "import sys; from sktransfer.cli import main; code = main(%r); "
        "print([m for m in ('torch', 'sklearn', 'skorch', 'numpy', 'PIL') "
        "if m in sys.modules]); sys.exit(code)" % argv
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _actions(parser):
    for action in parser._actions:
        yield parser.prog, action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def test_every_option_and_argument_has_help():
    for prog, action in _actions(build_parser()):
        name = f"{prog} {action.option_strings or action.dest}"
        assert action.help and action.help != argparse.SUPPRESS, name
        assert "or ..." not in action.help, name  # no help text trailing off
