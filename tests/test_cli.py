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


def test_fit_writes_the_model_card_next_to_the_model(fitted):
    import joblib

    from sktransfer.persistence import weights_digest

    card = fitted.with_suffix(".md").read_text()
    model = joblib.load(fitted)
    assert "| Classes | face, not_face |" in card
    assert f"`{weights_digest(model)}`" in card
    assert "| Training images | 16 |" in card  # refitted on all 16 images
    assert "- held-out accuracy: " in card
    assert "| Backbone | timm:tf_efficientnet_lite0 |" in card


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
    import json

    # The demo reads the weights from $SKTRANSFER_HOME; point it at the
    # session's converted copy so nothing is written to the home folder.
    monkeypatch.setenv("SKTRANSFER_HOME", str(lite0_weights.parent))
    out = tmp_path / "demo"
    args = ["demo", "--output-dir", str(out), "--labels-per-class", "10"]
    args += ["--curve", "2,10", "--repeats", "5", "--image-size", "64", "-q"]
    # The figure must not switch the process's matplotlib backend: start from
    # one that is not Agg, so a matplotlib.use("Agg") would show.
    matplotlib = pytest.importorskip("matplotlib")
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        assert main(args) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    printed = capsys.readouterr().out
    assert "raw pixels" in printed and "predictions identical: yes" in printed
    assert "With 10 labels per class, pretrained features make" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "demo.png",
        "model.joblib",
        "results.json",
    ]
    results = json.loads((out / "results.json").read_text())
    accuracy = {
        (r["features"], r["labels_per_class"]): r["mean_accuracy"]
        for r in results["learning_curve"]
    }
    assert len(accuracy) == 4 and results["repeats"] == 5
    # The case the package exists for: few labels, pretrained features win.
    for n in (2, 10):
        assert accuracy["EfficientNet-Lite0 (ImageNet)", n] > accuracy["raw pixels", n]
    assert results["saved_model"]["reloaded_predictions_identical"]


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
        f"import sys; from sktransfer.cli import main; code = main({argv!r}); "
        "print([m for m in ('torch', 'sklearn', 'skorch', 'numpy', 'PIL') "
        "if m in sys.modules]); sys.exit(code)"
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


# ------------------------------------------------------------ user errors
def _one_line_error(err, command, start):
    """stderr holds exactly one line: the error, naming the option."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"sktransfer {command}: error: {start}"), lines[0]
    return lines[0]


@pytest.fixture
def small_folder(tmp_path):
    return _folder(tmp_path / "data", {"a": 4, "b": 4})


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--model", "resnt18", ["Did you mean 'resnet18'", "list_backbones()"]),
        ("--layer", "layer9", ["not a module or graph node", "named_modules"]),
        ("--pooling", "mean", ["'avg'", "'max'", "Got 'mean'"]),
        ("--device", "gpu", ["not a valid torch device", "'cpu'"]),
        ("--device", "cuda", ["CUDA is not available", "'auto'"]),
        ("--weights", "IMAGENET9K", ["Valid names", "IMAGENET1K_V1"]),
    ],
)
def test_bad_option_value_ends_in_one_line(
    small_folder, tmp_path, capsys, no_cuda, option, value, words
):
    out = tmp_path / "features.npy"
    args = ["embed", str(small_folder), "-o", str(out), "--image-size", "16", "-q"]
    if option != "--weights":
        args += ["--weights", "none"]
    assert main([*args, option, value]) == EXIT_USAGE
    line = _one_line_error(capsys.readouterr().err, "embed", f"{option} {value}: ")
    for word in words:
        assert word in line
    assert not out.exists()


def _bad_weights(tmp_path, kind):
    import torch

    path = tmp_path / "weights.pth"
    if kind == "garbage":
        path.write_bytes(b"not a state_dict")
    elif kind == "other-architecture":
        torch.save({"conv.weight": torch.zeros(1)}, path)
    return path  # "missing": never written


@pytest.mark.parametrize(
    "kind, words",
    [
        ("garbage", ["Could not read weights file", "weights.pth"]),
        ("other-architecture", ["does not fit the architecture", "conv.weight"]),
        ("missing", ["no such file", "offline"]),
    ],
)
def test_bad_weights_file_ends_in_one_line(small_folder, tmp_path, capsys, kind, words):
    weights = _bad_weights(tmp_path, kind)
    out = tmp_path / "model.joblib"
    args = ["fit", str(small_folder), "-o", str(out), "--weights", str(weights)]
    assert main([*args, "--image-size", "16", "-q"]) == EXIT_INPUT
    line = _one_line_error(capsys.readouterr().err, "fit", f"--weights {weights}: ")
    for word in words:
        assert word in line
    assert not out.exists()


@pytest.mark.parametrize("test_size", ["0.9", "0.05"])
def test_test_size_too_large_or_small_for_the_folder(
    small_folder, tmp_path, capsys, test_size
):
    # 8 images in 2 classes: 0.9 leaves 0 for training, 0.05 holds out 1.
    out = tmp_path / "model.joblib"
    args = ["fit", str(small_folder), "-o", str(out), "--weights", "none", "-q"]
    assert main([*args, "--test-size", test_size]) == EXIT_INPUT
    line = _one_line_error(capsys.readouterr().err, "fit", f"--test-size {test_size}")
    assert "--test-size 0" in line
    assert not out.exists()


def test_debug_prints_the_traceback_before_the_line(small_folder, tmp_path, capsys):
    args = ["embed", str(small_folder), "-o", str(tmp_path / "f.npy"), "-q"]
    args += ["--weights", "none", "--layer", "layer9", "--debug"]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert err.strip().splitlines()[-1].startswith("sktransfer embed: error: --layer")


def test_unexpected_error_is_one_line_with_exit_1(
    small_folder, tmp_path, capsys, monkeypatch
):
    from sktransfer import PretrainedFeatureExtractor

    def fail(self, X, y=None):
        raise RuntimeError("something broke")

    monkeypatch.setattr(PretrainedFeatureExtractor, "fit_transform", fail)
    args = ["embed", str(small_folder), "-o", str(tmp_path / "f.npy"), "-q"]
    assert main([*args, "--weights", "none"]) == 1
    line = _one_line_error(capsys.readouterr().err, "embed", "RuntimeError: ")
    assert "something broke" in line and "--debug" in line


def test_default_weights_offline_names_the_offline_choices(
    small_folder, tmp_path, capsys, monkeypatch
):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", offline)
    out = tmp_path / "model.joblib"
    assert main(["fit", str(small_folder), "-o", str(out), "-q"]) == EXIT_INPUT
    line = _one_line_error(capsys.readouterr().err, "fit", "--weights DEFAULT: ")
    assert "no download is possible" in line
    for choice in ["--weights offline", "a local file", "--weights none"]:
        assert choice in line
    assert not out.exists()


@pytest.mark.parametrize("content", [b"garbage", b""], ids=["garbage", "empty"])
def test_predict_with_a_file_that_is_not_a_model(tmp_path, capsys, content):
    bad = tmp_path / "photo.joblib"
    bad.write_bytes(content)
    image = _folder(tmp_path / "d", {"a": 1}) / "a" / "0.png"
    assert main(["predict", str(bad), str(image)]) == EXIT_INPUT
    line = _one_line_error(capsys.readouterr().err, "predict", "")
    assert "not a model saved by sktransfer (or joblib)" in line
    assert "photo.joblib" in line


@pytest.mark.parametrize("during", ["fit", "save"])
def test_interrupt_exits_130_and_keeps_the_old_model(
    small_folder, tmp_path, capsys, monkeypatch, during
):
    import joblib
    from sklearn.pipeline import Pipeline

    out = tmp_path / "model.joblib"
    out.write_bytes(b"the model of yesterday")

    def interrupt(*args, **kwargs):
        if during == "save":
            args[1].write_bytes(b"half a model")  # joblib.dump(model, path)
        raise KeyboardInterrupt

    if during == "fit":
        monkeypatch.setattr(Pipeline, "fit", interrupt)
    else:
        monkeypatch.setattr(joblib, "dump", interrupt)
    args = ["fit", str(small_folder), "-o", str(out), "--weights", "none", "-q"]
    assert main([*args, "--image-size", "16", "--test-size", "0"]) == 130
    _one_line_error(capsys.readouterr().err, "fit", "interrupted")
    assert out.read_bytes() == b"the model of yesterday"
    assert not _leftovers(tmp_path)


# ------------------------------------------------- unreadable and skipped files
@pytest.fixture
def mixed_folder(faces, tmp_path):
    """3 real face images, a damaged JPEG and a truncated PNG."""
    import shutil

    root = tmp_path / "new_photos"
    root.mkdir()
    for image in sorted((faces / "val" / "face").iterdir())[:3]:
        shutil.copy(image, root / image.name)
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    good = next(root.glob("*.png")).read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    return root


def test_predict_reports_every_unreadable_image_and_writes_nothing(
    fitted, mixed_folder, tmp_path, capsys
):
    out = tmp_path / "pred.csv"
    assert main(["predict", str(fitted), str(mixed_folder), "-o", str(out), "-q"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split()[2] for line in err[:-1]] == [
        str(mixed_folder / "broken.jpg"),
        str(mixed_folder / "truncated.png"),
    ]
    assert err[-1].startswith("sktransfer predict: error: 2 of the 5 images")
    assert "--skip-unreadable" in err[-1]
    assert not out.exists() and not _leftovers(tmp_path)


def test_predict_skip_unreadable_predicts_the_rest(
    fitted, mixed_folder, tmp_path, capsys
):
    out = tmp_path / "pred.csv"
    args = ["predict", str(fitted), str(mixed_folder), "-o", str(out), "--proba"]
    assert main([*args, "--skip-unreadable", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped unreadable image") == 2
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5  # every file has its row, in path order
    empty = [r["path"].split("/")[-1] for r in rows if r["prediction"] == ""]
    assert empty == ["broken.jpg", "truncated.png"]
    assert all(r["proba_face"] == "" for r in rows if r["prediction"] == "")
    assert all(r["prediction"] in {"face", "not_face"} for r in rows[1:4])


def test_fit_reports_every_unreadable_image_in_one_pass(tmp_path, capsys):
    root = _folder(tmp_path / "data", {"a": 4, "b": 4})
    (root / "a" / "bad1.png").write_bytes(b"")
    (root / "b" / "bad2.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "model.joblib"
    args = ["fit", str(root), "-o", str(out), "--weights", "none", "-q"]
    assert main(args) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "bad1.png" in err and "bad2.jpg" in err
    assert "2 of the 10 images cannot be read" in err.splitlines()[-1]
    assert not out.exists()


def test_fit_reads_gif_and_counts_the_skipped_files(tmp_path, capsys):
    root = _folder(tmp_path / "data", {"a": 2, "b": 2})
    from PIL import Image

    Image.new("RGB", (16, 16), (9, 9, 9)).save(root / "a" / "anim.gif")
    (root / "b" / "IMG_0001.heic").write_bytes(b"ftypheic")
    out = tmp_path / "model.joblib"
    args = ["fit", str(root), "-o", str(out), "--weights", "none"]
    assert main([*args, "--image-size", "16", "--test-size", "0"]) == 0
    err = capsys.readouterr().err
    assert "Found 5 images in 2 classes: a (3), b (2)" in err
    assert (
        "sktransfer fit: warning: Skipped 1 file that Pillow cannot read here: "
        ".heic (1)" in err
    )


# ------------------------------------------------------------------ devices
@pytest.fixture
def saved_for_cuda(fitted, tmp_path):
    """The fitted pipeline, saved as if fitted with device="cuda"."""
    import joblib

    model = joblib.load(fitted)
    model.steps[0][1].set_params(device="cuda")
    path = tmp_path / "cuda.joblib"
    joblib.dump(model, path)
    return path


def test_predict_falls_back_to_the_cpu_with_a_warning(
    saved_for_cuda, faces, no_cuda, capsys
):
    image = next((faces / "val" / "face").iterdir())
    assert main(["predict", str(saved_for_cuda), str(image), "-q"]) == 0
    captured = capsys.readouterr()
    assert "warning: the model was saved with device='cuda'" in captured.err
    assert "on the CPU" in captured.err
    assert captured.out.splitlines()[1].split(",")[1] in {"face", "not_face"}


def test_predict_device_option(saved_for_cuda, faces, no_cuda, capsys):
    image = next((faces / "val" / "face").iterdir())
    args = ["predict", str(saved_for_cuda), str(image), "-q"]
    assert main([*args, "--device", "cpu"]) == 0
    assert capsys.readouterr().err == ""  # no fallback needed
    assert main([*args, "--device", "cuda"]) == EXIT_USAGE
    _one_line_error(capsys.readouterr().err, "predict", "--device cuda: ")


def test_files_written_get_the_umask_mode_and_keep_a_replaced_files_mode(tmp_path):
    import os
    import stat

    from sktransfer._cli_support import atomic_write

    old = os.umask(0o022)
    try:
        target = tmp_path / "model.joblib"
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"one")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        target.chmod(0o640)
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"two")
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        assert target.read_bytes() == b"two"
    finally:
        os.umask(old)
