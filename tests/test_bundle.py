"""engine.model.bundle: a bundle loads; a damaged one is refused with one line naming the file."""
import json
import shutil

import pytest

from engine.model.bundle import BundleError, load_bundle, write_manifest
from engine.paths import DEFAULT_BUNDLE
from tests.test_runtime import random_bundle2  # noqa: F401  (the format-2 twin of random_bundle)


@pytest.fixture()
def copy(random_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(random_bundle, dst)
    return dst


def test_random_bundle_loads(random_bundle):
    b = load_bundle(random_bundle)
    assert b.decoder.vocab_size == b.tokenizer.vocab_size
    assert b.decoder.n_layers >= 1 and 0 < b.decoder.reprime_keep < b.decoder.max_context
    assert b.image_encoder.image_tokens >= 1 and len(b.image_encoder.mean) == 3
    assert b.bos == b.tokenizer.groups.bos


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_corrupt_file_is_named(copy):
    p = copy / "decoder_step.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        load_bundle(copy)
    assert "decoder_step.onnx" in one_line(e) and "corrupt" in one_line(e)


def test_missing_manifest_and_files(copy):
    (copy / "condition.onnx").unlink()
    with pytest.raises(BundleError) as e:
        load_bundle(copy)
    assert "condition.onnx" in one_line(e) and "missing" in one_line(e)
    (copy / "manifest.json").unlink()
    with pytest.raises(BundleError) as e:
        load_bundle(copy)
    assert "manifest.json is missing" in one_line(e)
    with pytest.raises(BundleError, match="no such folder"):
        load_bundle(copy / "nope")


def test_unlisted_file_and_bad_config(copy):
    (copy / "extra.bin").write_bytes(b"x")
    with pytest.raises(BundleError) as e:
        load_bundle(copy)
    assert "extra.bin is not listed" in one_line(e)
    (copy / "extra.bin").unlink()
    cfg = json.loads((copy / "config.json").read_text())
    cfg["format"] = "something-else/9"
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="corrupt"):  # the manifest catches the edit first
        load_bundle(copy)
    write_manifest(copy)
    with pytest.raises(BundleError, match="format 'something-else/9'"):
        load_bundle(copy)
    del cfg["decoder"]
    cfg["format"] = "moodroll-bundle/1"
    (copy / "config.json").write_text(json.dumps(cfg))
    write_manifest(copy)
    with pytest.raises(BundleError, match="'decoder'"):
        load_bundle(copy)


def test_shipped_bundle_loads_when_present():
    if not (DEFAULT_BUNDLE / "manifest.json").is_file():
        pytest.skip("no shipped bundle in assets/models/default yet")
    b = load_bundle()
    assert b.tokenizer.vocab_size == b.decoder.vocab_size


def test_format2_loads_and_a_wrong_cache_kind_is_refused(random_bundle, random_bundle2, tmp_path):
    assert load_bundle(random_bundle).format == 1
    b = load_bundle(random_bundle2)
    assert b.format == 2 and b.decoder.cache == "fixed" and b.config["decoder"]["d_ff"] > 0
    dst = tmp_path / "b2"
    shutil.copytree(random_bundle2, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["decoder"]["cache"] = "concat"
    (dst / "config.json").write_text(json.dumps(cfg))
    write_manifest(dst)
    with pytest.raises(BundleError) as e:
        load_bundle(dst)
    assert "decoder.cache 'concat' does not fit format 'moodroll-bundle/2'" in one_line(e)
