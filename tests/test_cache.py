"""The embedding cache: damaged entries, unwritable directories, file modes."""

import os
import stat
import threading
import warnings

import numpy as np
import pytest
from _helpers import make_tiny_cnn

from sktransfer import PretrainedFeatureExtractor
from sktransfer.cache import EmbeddingCache, clear_embedding_cache
from sktransfer.exceptions import CacheWarning


def _extractor(**params):
    defaults = dict(model=make_tiny_cnn(), image_size=16, progress=False)
    return PretrainedFeatureExtractor(**{**defaults, **params})


def _entries(directory):
    return sorted(directory.rglob("*.npy"))


@pytest.mark.parametrize("damage", ["empty", "wrong width", "not numpy", "pickle"])
def test_damaged_entries_are_recomputed_and_counted(rgb_images, tmp_path, damage):
    clear_embedding_cache()
    reference = _extractor(memory=tmp_path).fit_transform(rgb_images)
    entries = _entries(tmp_path)
    for path in entries[:3]:
        if damage == "empty":
            path.write_bytes(b"")
        elif damage == "wrong width":
            np.save(path, np.zeros(5, np.float32))
        elif damage == "not numpy":
            path.write_bytes(b"garbage")
        else:
            np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    clear_embedding_cache()
    with pytest.warns(CacheWarning, match=r"3 damaged entries in the embedding cache"):
        out = _extractor(memory=tmp_path).fit(rgb_images).transform(rgb_images)
    # recomputed in smaller batches: equal up to float rounding
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
    # overwritten: the next run reads them back without a warning
    clear_embedding_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = _extractor(memory=tmp_path).fit(rgb_images).transform(rgb_images)
    np.testing.assert_array_equal(again, out)


def test_a_damaged_row_does_not_poison_runs_without_memory(rgb_images, tmp_path):
    clear_embedding_cache()
    ext = _extractor(memory=tmp_path).fit(rgb_images)
    reference = ext.transform(rgb_images)
    np.save(_entries(tmp_path)[0], np.zeros(5, np.float32))
    clear_embedding_cache()
    with pytest.warns(CacheWarning):
        ext.transform(rgb_images)
    plain = _extractor().fit(rgb_images).transform(rgb_images)
    np.testing.assert_allclose(plain, reference, rtol=1e-5, atol=1e-6)


def test_memory_naming_a_file_warns_once_and_computes(rgb_images, tmp_path):
    clear_embedding_cache()
    not_a_dir = tmp_path / "cache.txt"
    not_a_dir.write_text("a file")
    ext = _extractor(memory=not_a_dir, streams=2).fit(rgb_images)
    with pytest.warns(CacheWarning, match=r"cannot write to '.*cache\.txt.*memory="):
        out = ext.transform(rgb_images)
    assert out.shape == (12, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # once per directory
        ext.transform(rgb_images)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_memory_warns_and_computes(rgb_images, tmp_path):
    clear_embedding_cache()
    tmp_path.chmod(0o555)
    try:
        with pytest.warns(CacheWarning, match="cannot write"):
            _extractor(memory=tmp_path).fit_transform(rgb_images)
    finally:
        tmp_path.chmod(0o755)


def test_a_write_error_joins_the_streams_and_reaches_the_caller(
    rgb_images, tmp_path, monkeypatch
):
    clear_embedding_cache()
    ext = _extractor(streams=2, batch_size=2).fit(rgb_images)

    def failing_put(self, keys, rows):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EmbeddingCache, "put", failing_put)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ext.transform(rgb_images)
    alive = [t for t in threading.enumerate() if t.name.startswith("sktransfer-stream")]
    assert alive == []


def test_cache_files_get_the_umask_mode(rgb_images, tmp_path):
    clear_embedding_cache()
    old = os.umask(0o022)
    try:
        _extractor(memory=tmp_path).fit_transform(rgb_images)
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in _entries(tmp_path)}
    assert modes == {0o644}
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written left
