"""Frozen image features, computed once per picture and cached.

The image encoder is frozen, so its image tokens for OASIS never change: they are computed
here with the one preprocessing (``engine.picture.image.load_image`` + ``preprocess``) and stored in
``runs/cache/features/<encoder>-g<grid>[-random].safetensors`` (one tensor per picture, keyed
by a hash of its path, modification time and size; the file's metadata names the encoder).
Training and evaluation then read tensors instead of running the CNN.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from engine.picture.image import load_image, preprocess
from engine.paths import REPO_ROOT
from training.encoders import ImageEncoder, build_encoder

DEFAULT_CACHE_DIR = REPO_ROOT / "runs" / "cache" / "features"


def _key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_mtime_ns}|{st.st_size}".encode()).hexdigest()[:24]


def encode_images(encoder: ImageEncoder, paths: Iterable[Path], batch: int = 16, progress: bool = False) -> torch.Tensor:
    """Image tokens [N, Ni, Dc] of pictures on disk (no cache)."""
    paths = [Path(p) for p in paths]
    out = []
    it = range(0, len(paths), batch)
    if progress:
        it = tqdm(it, desc=f"encoding images ({encoder.name})", unit="batch")
    with torch.no_grad():
        for i in it:
            x = np.stack([preprocess(load_image(p), encoder.size, encoder.mean, encoder.std) for p in paths[i:i + batch]])
            out.append(encoder(torch.from_numpy(x)))
    return torch.cat(out) if out else torch.zeros(0, encoder.image_tokens, encoder.dim)


def image_features(records: Iterable, encoder: str | ImageEncoder = "efficientnet_lite0",
                   cache_dir: str | Path | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """``{str(record.path): image tokens [Ni, Dc]}`` for records with ``.path`` (or paths), cached."""
    enc = build_encoder(encoder) if isinstance(encoder, str) else encoder
    paths = [Path(getattr(r, "path", r)) for r in records]
    folder = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{enc.name}-g{enc.grid}{'' if enc.pretrained else '-random'}.safetensors"
    cached = load_file(file) if file.is_file() else {}
    keys = [_key(p) for p in paths]
    todo = [(p, k) for p, k in zip(paths, keys) if k not in cached]
    if todo:
        feats = encode_images(enc, [p for p, _ in todo], progress=progress)
        cached.update({k: f.contiguous() for (_, k), f in zip(todo, feats)})
        tmp = file.with_suffix(".tmp")
        save_file(cached, str(tmp), metadata={"encoder": json.dumps(enc.describe())})
        tmp.replace(file)
    return {str(p): cached[k] for p, k in zip(paths, keys)}
