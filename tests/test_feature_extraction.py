import numpy as np
import pandas as pd
import pytest
import torch
from _helpers import make_tiny_cnn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor
from sktransfer.cache import clear_embedding_cache


def _extractor(**params):
    defaults = dict(
        model=make_tiny_cnn(), image_size=16, progress=False, random_state=0
    )
    return PretrainedFeatureExtractor(**{**defaults, **params})


def _count_forwards(extractor, monkeypatch):
    import sktransfer.embedding as emb

    calls = []
    original = emb._embed_uncached

    def counting(network, images, *args, **kwargs):
        calls.append(len(images))
        return original(network, images, *args, **kwargs)

    monkeypatch.setattr(emb, "_embed_uncached", counting)
    return calls


def test_fit_transform_shape_dtype_and_names(rgb_images):
    ext = _extractor()
    Z = ext.fit_transform(rgb_images)
    assert Z.shape == (12, 8) and Z.dtype == np.float32
    assert ext.n_features_out_ == 8 and not hasattr(ext, "n_features_in_")
    assert list(ext.get_feature_names_out()[:2]) == ["tinycnn_0", "tinycnn_1"]
    assert ext.preprocessing_.image_size == 16


def test_init_stores_parameters_only():
    net = make_tiny_cnn()
    ext = PretrainedFeatureExtractor(net, weights=None, layer="stage1")
    assert ext.model is net and ext.weights is None and ext.layer == "stage1"
    assert not hasattr(ext, "backbone_")


def test_network_in_eval_mode_and_batchnorm_frozen(rgb_images):
    net = make_tiny_cnn()
    net.train()
    ext = _extractor(model=net, cache=False).fit(rgb_images)
    before = ext.backbone_.trunk.stem[1].running_mean.clone()
    ext.transform(rgb_images)
    assert not ext.backbone_.training
    assert torch.equal(before, ext.backbone_.trunk.stem[1].running_mean)
    assert net.training  # the user's module is untouched


def test_same_output_for_every_input_form(rgb_images, tmp_path):
    from PIL import Image

    paths = []
    for i, arr in enumerate(rgb_images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(arr).save(paths[-1])
    ext = _extractor(cache=False).fit(rgb_images)
    ref = ext.transform(rgb_images)
    np.testing.assert_allclose(
        ext.transform(torch.from_numpy(rgb_images.copy())), ref, atol=1e-6
    )
    np.testing.assert_allclose(ext.transform(rgb_images / 255.0), ref, atol=1e-5)
    # PIL resampling differs slightly from torch's; files are decoded with PIL
    np.testing.assert_allclose(ext.transform(paths), ref, atol=0.05)
    assert ext.transform(pd.Series(paths)).shape == ref.shape


def test_flattened_input_sets_n_features_in(rgb_images):
    flat = rgb_images.reshape(12, -1)
    ext = _extractor(image_shape=(20, 24, 3)).fit(flat)
    assert ext.n_features_in_ == 20 * 24 * 3
    np.testing.assert_allclose(
        ext.transform(flat), _extractor().fit_transform(rgb_images), atol=1e-6
    )
    with pytest.raises(
        ValueError,
        match="X has 10 features, but PretrainedFeatureExtractor is expecting 1440",
    ):
        ext.transform(flat[:, :10])


def test_layer_and_pooling(rgb_images):
    avg = _extractor(layer="stage1").fit_transform(rgb_images)
    both = _extractor(layer="stage1", pooling="avgmax").fit_transform(rgb_images)
    assert avg.shape == (12, 8) and both.shape == (12, 16)
    np.testing.assert_allclose(both[:, :8], avg, atol=1e-6)
    assert (both[:, 8:] >= both[:, :8] - 1e-6).all()  # max >= mean


def test_torchvision_graph_node_layer(rgb_images):
    ext = PretrainedFeatureExtractor(
        "resnet18",
        weights=None,
        layer="layer2.1.add",
        image_size=32,
        random_state=0,
        progress=False,
    )
    assert ext.fit_transform(rgb_images[:2]).shape == (2, 128)


def test_cls_pooling_of_transformer_tokens(rgb_images):
    ext = PretrainedFeatureExtractor(
        "vit_b_16",
        weights=None,
        layer="encoder.layers.encoder_layer_1",
        pooling="cls",
        random_state=0,
        progress=False,
    )
    assert ext.fit_transform(rgb_images[:1]).shape == (1, 768)


def test_bfloat16_close_to_float32(rgb_images):
    f32 = _extractor(cache=False).fit_transform(rgb_images)
    bf16 = _extractor(precision="bfloat16", cache=False).fit_transform(rgb_images)
    rel = np.linalg.norm(bf16 - f32) / np.linalg.norm(f32)
    assert 0 < rel < 0.05


def test_random_state_controls_random_init(rgb_images):
    a = _extractor(weights=None, random_state=0).fit_transform(rgb_images)
    b = _extractor(weights=None, random_state=0).fit_transform(rgb_images)
    c = _extractor(weights=None, random_state=1).fit_transform(rgb_images)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_batch_size_and_workers_do_not_change_results(image_files):
    ref = _extractor(cache=False, batch_size=1).fit_transform(image_files)
    other = _extractor(cache=False, batch_size=4, num_workers=1).fit_transform(
        image_files
    )
    np.testing.assert_allclose(ref, other, atol=1e-5)


@pytest.mark.parametrize("streams", [2, 3])
def test_streams_do_not_change_results(image_files, rgb_images, streams):
    for X in (image_files * 3, rgb_images):
        ref = _extractor(cache=False, batch_size=2, streams=1).fit_transform(X)
        other = _extractor(cache=False, batch_size=2, streams=streams).fit_transform(X)
        np.testing.assert_array_equal(ref, other)


@pytest.mark.parametrize("layer", ["stage1", "stem.0"])
def test_streams_with_a_module_tap(rgb_images, layer):
    # Both streams hook the same layer of the shared trunk: each must capture
    # its own forward pass (a hook acting on the other's raised KeyError).
    ref = _extractor(cache=False, layer=layer, batch_size=1, streams=1)
    other = _extractor(cache=False, layer=layer, batch_size=1, streams=2)
    np.testing.assert_array_equal(
        ref.fit_transform(rgb_images), other.fit_transform(rgb_images)
    )


def test_auto_streams_only_for_networks_built_from_a_name(rgb_images, monkeypatch):
    import sktransfer.images as images_module

    used = []
    original = images_module.map_streams

    def spy(fn, items, streams):
        used.append(streams)
        return original(fn, items, streams)

    monkeypatch.setattr(images_module, "map_streams", spy)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    _extractor(cache=False).fit_transform(rgb_images)  # a user's module
    PretrainedFeatureExtractor(
        "resnet18", weights=None, image_size=16, cache=False, progress=False
    ).fit_transform(rgb_images)
    _extractor(cache=False, streams=2).fit_transform(rgb_images)
    assert used == [1, 2, 2]


def test_streams_report_an_unreadable_file_by_name(image_files, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nonsense")
    ext = _extractor(batch_size=2, streams=2).fit(image_files)
    with pytest.raises(
        ValueError, match=r"Could not read image '.*bad\.jpg' \(index 6\)"
    ):
        ext.transform([*image_files, str(bad), *image_files])


def test_clones_share_the_inference_copy_and_release_it(rgb_images):
    import gc
    import weakref

    from sklearn.base import clone

    import sktransfer.embedding as emb

    a = PretrainedFeatureExtractor(
        "resnet18", weights=None, image_size=32, random_state=0, progress=False
    ).fit(rgb_images)
    b = clone(a).fit(rgb_images)  # what GridSearchCV does for every candidate
    # folded once, not per clone
    assert emb.inference_network(a.backbone_, "cpu") is emb.inference_network(
        b.backbone_, "cpu"
    )
    assert not isinstance(
        emb.inference_network(a.backbone_, "cpu").bn1, torch.nn.BatchNorm2d
    )
    # A user's module is deep-copied per fit: its copy goes with the estimator.
    ext = _extractor().fit(rgb_images)
    assert ext.backbone_.trunk in emb._INFERENCE_COPIES
    trunk = weakref.ref(ext.backbone_.trunk)
    del ext
    gc.collect()
    assert trunk() is None  # the memo does not keep it alive


def test_inference_copy_for_another_device_leaves_the_trunk_alone():
    # The trunk may be shared by every clone: the copy for another device is a
    # copy, and the trunk itself never moves.
    from sktransfer._torch_utils import module_device
    from sktransfer.embedding import embedding_network, inference_network

    trunk = make_tiny_cnn().eval()
    net = embedding_network(trunk)
    on_cpu = inference_network(net, "cpu")
    assert inference_network(net, "cpu") is on_cpu and on_cpu is not trunk
    moved = inference_network(net, "meta")  # stands in for an accelerator
    assert module_device(on_cpu).type == "cpu"
    assert module_device(moved).type == "meta"
    assert module_device(trunk).type == "cpu"


def test_set_output_pandas(rgb_images):
    out = _extractor().set_output(transform="pandas").fit_transform(rgb_images)
    assert isinstance(out, pd.DataFrame) and list(out.columns[:1]) == ["tinycnn_0"]


def test_progress_bar_shows_when_asked(rgb_images, capsys):
    _extractor(progress=True, cache=False).fit_transform(rgb_images)
    assert "Embedding with TinyCNN" in capsys.readouterr().err


# ---------------------------------------------------------------- the cache
def test_cache_embeds_each_image_once_across_grid_search(rgb_images, monkeypatch):
    clear_embedding_cache()
    calls = _count_forwards(None, monkeypatch)
    X = np.concatenate([rgb_images] * 3)
    X = X + np.arange(36, dtype=np.uint8)[:, None, None, None]  # 36 distinct images
    y = np.array(["cat", "dog"] * 18)
    pipe = make_pipeline(_extractor(), LogisticRegression(max_iter=200))
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3).fit(
        X, y
    )
    assert sum(calls) == 36  # not 3 candidates x 3 folds x 36
    assert search.predict(X[:2]).tolist()[0] in {"cat", "dog"}
    scores = cross_val_score(pipe, X, y, cv=3)
    assert sum(calls) == 36 and scores.shape == (3,)


def test_cache_misses_when_configuration_changes(rgb_images, monkeypatch):
    clear_embedding_cache()
    calls = _count_forwards(None, monkeypatch)
    _extractor().fit_transform(rgb_images)
    _extractor().fit_transform(rgb_images)
    assert calls == [12]
    _extractor(image_size=12).fit_transform(rgb_images)
    _extractor(layer="stage1").fit_transform(rgb_images)
    _extractor(precision="bfloat16").fit_transform(rgb_images)
    _extractor(model=make_tiny_cnn(seed=1)).fit_transform(rgb_images)
    assert calls == [12] * 5
    _extractor(cache=False).fit_transform(rgb_images)
    assert calls == [12] * 6


def test_cache_returns_only_missing_images(rgb_images, monkeypatch):
    clear_embedding_cache()
    calls = _count_forwards(None, monkeypatch)
    ext = _extractor().fit(rgb_images)
    part = ext.transform(rgb_images[:5])
    full = ext.transform(rgb_images)
    assert calls == [5, 7]
    np.testing.assert_array_equal(full[:5], part)
    np.testing.assert_allclose(
        full, _extractor(cache=False).fit_transform(rgb_images), atol=1e-6
    )


def test_disk_cache_shared_between_processes(rgb_images, tmp_path, monkeypatch):
    import joblib

    clear_embedding_cache()
    ref = _extractor(memory=str(tmp_path)).fit_transform(rgb_images)
    files = list((tmp_path / "sktransfer_embeddings").rglob("*.npy"))
    assert len(files) == 12
    clear_embedding_cache()  # as if in a new process
    calls = _count_forwards(None, monkeypatch)
    again = _extractor(memory=joblib.Memory(tmp_path, verbose=0)).fit_transform(
        rgb_images
    )
    assert calls == [] and np.array_equal(ref, again)


def test_grid_search_with_two_jobs(rgb_images, tmp_path):
    X = np.concatenate([rgb_images, rgb_images[:, ::-1]])
    y = np.array([0, 1] * 12)
    pipe = make_pipeline(_extractor(memory=str(tmp_path)), LogisticRegression())
    search = GridSearchCV(
        pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2, n_jobs=2
    ).fit(X, y)
    assert search.best_params_["logisticregression__C"] in {0.1, 1.0}


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, error, match",
    [
        (
            dict(pooling="median"),
            ValueError,
            "The 'pooling' parameter of PretrainedFeatureExtractor must be",
        ),
        (dict(batch_size=0), ValueError, "The 'batch_size' parameter"),
        (dict(precision="int8"), ValueError, "The 'precision' parameter"),
        (
            dict(precision="float16"),
            ValueError,
            "precision='float16' is only supported on CUDA",
        ),
        (dict(device="cuda:0"), ValueError, "CUDA is not available on this machine"),
        (
            dict(device="quantum"),
            ValueError,
            "device='quantum' is not a valid torch device",
        ),
        (dict(mean=(0.5, 0.5)), ValueError, r"mean must hold 3 values \(R, G, B\)"),
        (
            dict(layer="stage9"),
            ValueError,
            r"layer='stage9' is not a module or graph node of this model\. Closest names: \[.*'stage1'",
        ),
        (
            dict(layer="stem", pooling="cls"),
            ValueError,
            "pooling='cls' takes the class token",
        ),
        (dict(memory=42), ValueError, "The 'memory' parameter"),
        (dict(streams=0), ValueError, "The 'streams' parameter"),
        (dict(streams="many"), ValueError, "The 'streams' parameter"),
    ],
)
def test_bad_parameters(rgb_images, params, error, match):
    if params.get("device") == "cuda:0" and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(error, match=match):
        _extractor(**params).fit_transform(rgb_images)


def test_transform_before_fit(rgb_images):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted yet"):
        _extractor().transform(rgb_images)


def test_unreadable_file_in_transform(image_files, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nonsense")
    ext = _extractor().fit(image_files)
    with pytest.raises(
        ValueError, match=r"Could not read image '.*bad\.jpg' \(index 2\)"
    ):
        ext.transform([*image_files[:2], str(bad)])


def test_backbone_stays_on_cpu_and_only_it_is_pickled(rgb_images):
    """No GPU here: a copy on the meta device stands in for an accelerator."""
    import pickle

    from sktransfer._torch_utils import module_device
    from sktransfer.embedding import inference_network

    ext = _extractor().fit(rgb_images)
    ref = ext.transform(rgb_images)
    inference_network(ext.backbone_, "meta")  # what a CUDA transform builds
    assert module_device(ext.backbone_).type == "cpu"
    state = ext.__reduce_ex__(4)[2]  # what pickle stores (skops: __getstate__)
    assert state["backbone_"] is ext.backbone_
    # the user's module (a parameter) and the view, nothing else: no inference
    # copy, no compiled graph
    assert {k for k, v in state.items() if isinstance(v, torch.nn.Module)} == {
        "model",
        "backbone_",
    }
    loaded = pickle.loads(pickle.dumps(ext))
    np.testing.assert_array_equal(loaded.transform(rgb_images), ref)


def test_nested_lists_of_rows_are_flattened_images(rgb_images):
    rows = rgb_images.reshape(12, -1)[:, :48].tolist()
    ext = _extractor(image_shape=(4, 4, 3)).fit(rows)
    assert ext.n_features_in_ == 48
    np.testing.assert_array_equal(ext.transform(rows), ext.transform(np.asarray(rows)))


def test_cache_is_written_batch_by_batch(rgb_images, monkeypatch):
    """An interrupted transform keeps the embeddings of the batches it finished."""
    import sktransfer.embedding as emb

    clear_embedding_cache()
    # One stream: batches finish in order, so the second one is the one cut.
    ext = _extractor(batch_size=4, streams=1).fit(rgb_images)
    original = emb.pool
    seen = []

    def failing_pool(out, pooling):
        seen.append(len(out))
        if len(seen) == 2:
            raise KeyboardInterrupt
        return original(out, pooling)

    monkeypatch.setattr(emb, "pool", failing_pool)
    with pytest.raises(KeyboardInterrupt):
        ext.transform(rgb_images)
    monkeypatch.undo()
    calls = _count_forwards(None, monkeypatch)
    ext.transform(rgb_images)
    assert calls == [8]  # the first batch of 4 was kept
