"""Load a model bundle (docs/bundle.md): read ``config.json``, check every file against the manifest.

A bundle is a folder written by ``training/export.py``. :func:`load_bundle` refuses a folder
whose manifest is missing, lists a missing file, leaves a file out, or whose SHA-256 does not
match, with a :class:`BundleError` whose one-line message names the file. The returned
:class:`Bundle` carries the parsed configuration and the paths of the ONNX graphs; it opens
no ONNX Runtime session (``engine.model.runtime`` does that).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Union

from engine.paths import DEFAULT_BUNDLE

BUNDLE_FORMAT = "moodroll-bundle/1"  # growing cache: past K/V in, past + new K/V ("present") out
BUNDLE_FORMATS = {BUNDLE_FORMAT: 1, "moodroll-bundle/2": 2}  # 2: fixed-capacity cache, new K/V out
MANIFEST_FORMAT = "moodroll-manifest/1"
MANIFEST = "manifest.json"


class BundleError(ValueError):
    """A model bundle that cannot be used; the message is one line naming the problem file."""


@dataclass(frozen=True)
class ImageEncoderConfig:
    file: str
    encoder: str
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_tokens: int  # Ni
    dim: int  # Dc


@dataclass(frozen=True)
class ConditionConfig:
    file: str
    memory_len: int  # M


@dataclass(frozen=True)
class DecoderConfig:
    file: str
    n_layers: int
    n_heads: int
    head_dim: int
    d_model: int
    vocab_size: int
    max_context: int
    reprime_keep: int
    rope_base: float
    cache: str = "concat"  # format 2: "fixed" (decoder_step.onnx reads fixed buffers, outputs new K/V)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder. ``tokenizer`` is loaded on first use."""

    path: Path
    name: str
    image_encoder: ImageEncoderConfig
    condition: ConditionConfig
    decoder: DecoderConfig
    special_tokens: dict  # {"bos": id, "eos": id, "pad": id}
    va_scale: tuple[float, float]
    tokenizer_file: str
    config: dict = field(repr=False)  # the raw config.json

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def format(self) -> int:
        """1 (growing past/present cache) or 2 (fixed-capacity cache written in place)."""
        return BUNDLE_FORMATS[self.config["format"]]

    @cached_property
    def tokenizer(self):
        from engine.music.tokenizer import Tokenizer

        try:
            tok = Tokenizer.load(self.file(self.tokenizer_file))
        except ValueError as e:
            raise BundleError(f"bundle {self.path}: {e}") from None
        if tok.vocab_size != self.decoder.vocab_size:
            raise BundleError(f"bundle {self.path}: {self.tokenizer_file} has {tok.vocab_size} tokens "
                              f"but the decoder expects {self.decoder.vocab_size}")
        return tok

    @property
    def bos(self) -> int:
        return int(self.special_tokens["bos"])

    @property
    def eos(self) -> int:
        return int(self.special_tokens["eos"])

    @property
    def pad(self) -> int:
        return int(self.special_tokens["pad"])


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Union[str, Path]) -> dict:
    """Hash every file of ``folder`` (except the manifest) into ``manifest.json``; returns it.

    ``training/export.py`` calls this last; tests use it after editing a bundle on purpose."""
    folder = Path(folder)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def verify_manifest(folder: Path) -> None:
    """Raise :class:`BundleError` unless every file listed is present with the listed SHA-256
    and every file of the folder is listed."""
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"bundle {folder}: {MANIFEST} is missing")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
        fmt = manifest.get("format")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"bundle {folder}: {MANIFEST} is not a valid manifest ({e})") from None
    if fmt != MANIFEST_FORMAT or not isinstance(files, dict):
        raise BundleError(f"bundle {folder}: {MANIFEST} has format {fmt!r}, expected {MANIFEST_FORMAT!r}")
    for name, digest in files.items():
        p = folder / name
        if Path(name).name != name:
            raise BundleError(f"bundle {folder}: {MANIFEST} lists {name!r}, which is not a plain file name")
        if not p.is_file():
            raise BundleError(f"bundle {folder}: {name} is listed in {MANIFEST} but missing")
        if sha256_file(p) != str(digest).lower():
            raise BundleError(f"bundle {folder}: {name} is corrupt (SHA-256 does not match {MANIFEST})")
    unlisted = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST and p.name not in files)
    if unlisted:
        raise BundleError(f"bundle {folder}: {unlisted[0]} is not listed in {MANIFEST}")


def _section(cfg: dict, key: str, cls, folder: Path):
    try:
        d = cfg[key]
        fields = cls.__dataclass_fields__
        kw = {k: d[k] for k in fields if k in d or fields[k].default is MISSING}
    except (KeyError, TypeError) as e:
        raise BundleError(f"bundle {folder}: config.json section {key!r} lacks {e}") from None
    for k in ("mean", "std"):
        if k in kw:
            kw[k] = tuple(float(x) for x in kw[k])
    return cls(**kw)


def load_bundle(path: Union[str, Path, None] = None, verify: bool = True) -> Bundle:
    """Read and check the bundle folder ``path`` (default: the shipped one)."""
    folder = Path(DEFAULT_BUNDLE if path is None else path).expanduser()
    if not folder.is_dir():
        raise BundleError(f"bundle {folder}: no such folder")
    if verify:
        verify_manifest(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {folder}: config.json is missing") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"bundle {folder}: config.json is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") not in BUNDLE_FORMATS:
        fmt = cfg.get("format") if isinstance(cfg, dict) else None
        raise BundleError(f"bundle {folder}: config.json has format {fmt!r}, expected one of "
                          f"{', '.join(map(repr, BUNDLE_FORMATS))}")
    bundle = Bundle(
        path=folder,
        name=str(cfg.get("name", folder.name)),
        image_encoder=_section(cfg, "image_encoder", ImageEncoderConfig, folder),
        condition=_section(cfg, "condition", ConditionConfig, folder),
        decoder=_section(cfg, "decoder", DecoderConfig, folder),
        special_tokens=dict(cfg.get("special_tokens", {"bos": 1, "eos": 2, "pad": 0})),
        va_scale=tuple(cfg.get("va_scale", (1.0, 9.0))),
        tokenizer_file=str(cfg.get("tokenizer", "tokenizer.json")),
        config=cfg,
    )
    for name in (bundle.tokenizer_file, bundle.image_encoder.file, bundle.condition.file, bundle.decoder.file):
        if not (folder / name).is_file():
            raise BundleError(f"bundle {folder}: {name} is missing")
    d = bundle.decoder
    if d.cache != ("fixed" if bundle.format == 2 else "concat"):
        raise BundleError(f"bundle {folder}: config.json decoder.cache {d.cache!r} does not fit format {cfg['format']!r}")
    if not 0 < d.reprime_keep < d.max_context:
        raise BundleError(f"bundle {folder}: config.json needs 0 < reprime_keep ({d.reprime_keep}) "
                          f"< max_context ({d.max_context})")
    return bundle
