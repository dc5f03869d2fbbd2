"""ONNX Runtime sessions for a bundle: image encoder, condition, cached decoder step.

:class:`Runtime` opens the three graphs of docs/bundle.md and runs them, nothing else:

* ``encode_image(rgb)`` -> image tokens [Ni, Dc] and the picture's (valence, arousal);
* ``cross_kv(va, image_tokens)`` -> every layer's cross-attention keys/values;
* ``decode(ids, cache, cross)`` -> logits of each new token, the cache grown in place.

``ids`` is [T] (one stream) or [B, T] (B streams in one call: classifier-free guidance's two
branches, or several variations); the cross K/V may have batch B or 1 (shared by every row).

Format 1 bundles: the self-attention cache is an explicit dict ``{"past_key_0": value, ...}``
(:class:`KVCache`, as in moonshine-onnx); after each step the graph's ``present_*`` outputs
become the next ``past_*`` inputs (the graph copies the whole past into them). Format 2 bundles:
a :class:`engine.model.cache.FixedKVCache` of fixed capacity that the engine updates in
place (the graph outputs only the new keys/values). Everything goes through IO binding; on CUDA
a format-1 cache and the cross K/V never leave the GPU (only the logits come back to the host).

Device: ``"auto"`` uses the CUDA execution provider only when it really works (the driver
library loads, the session keeps CUDA as its first provider, and a probe step runs), else
the CPU. :attr:`Runtime.provider` says which one is in use.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from engine.errors import first_line
from engine.model.bundle import Bundle, BundleError
from engine.model.cache import FixedKVCache, decode_fixed
from engine.picture.image import preprocess

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


class DeviceError(ValueError):
    """The device asked for cannot be used (one line saying why)."""


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library loads (cheap check before trying the CUDA provider)."""
    if CUDA not in ort.get_available_providers():
        return False
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def default_threads() -> int:
    """Half the cores (at least 1): the other half stays free for playback and the UI."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, cores // 2)


def session_options(threads: int | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    so.intra_op_num_threads = int(threads or default_threads())
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: fair to playback
    so.log_severity_level = 3  # errors only: a CUDA fallback is reported through Runtime.provider
    return so


@dataclass
class KVCache:
    """Format 1's self-attention cache: ``past`` maps ``past_key_{l}``/``past_value_{l}`` to
    OrtValues [B, H, P, Dh]; ``length`` = P, the number of cached positions (every row alike)."""

    past: dict = field(default_factory=dict)
    length: int = 0

    @property
    def batch(self) -> int:
        return int(next(iter(self.past.values())).shape()[0]) if self.past else 1


class Runtime:
    """The bundle's ONNX graphs on one device. ``threads`` = intra-op threads (None: half the cores)."""

    def __init__(self, bundle: Bundle, device: str = "auto", threads: int | None = None):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        self.bundle = bundle
        self.threads = int(threads or default_threads())
        d = bundle.decoder
        self.n_layers, self.n_heads, self.head_dim, self.vocab_size = d.n_layers, d.n_heads, d.head_dim, d.vocab_size
        self.fixed = bundle.format == 2  # the in-place, fixed-capacity cache
        self._opts = session_options(threads)
        self.provider, self.device = CPU, "cpu"
        self.cuda_unavailable_reason: str | None = None
        if device in ("auto", "cuda") and os.environ.get("MOODROLL_DEVICE", "").lower() != "cpu":
            self._try_cuda(required=device == "cuda")
        if self.provider == CPU:
            self.decoder = self._session(d.file, [CPU])
            self.condition = self._session(bundle.condition.file, [CPU])
            self._check_io()
        self._image_encoder = None

    @property
    def decoding_path(self) -> str:
        """The decoding path by the bench's name: ``ort_fixed`` (format 2, the cache written in
        place) or ``ort_kv`` (format 1, past/present copied every step)."""
        return "ort_fixed" if self.fixed else "ort_kv"

    # -- sessions --------------------------------------------------------------------------
    def _providers(self) -> list:
        return [CUDA, CPU] if self.provider == CUDA else [CPU]

    def _session(self, name: str, providers: list) -> ort.InferenceSession:
        path = self.bundle.file(name)
        try:
            return ort.InferenceSession(str(path), sess_options=self._opts, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
            first = first_line(e)
            raise BundleError(f"bundle {self.bundle.path}: {name} cannot be loaded by ONNX Runtime: {first}") from None

    def _try_cuda(self, required: bool) -> None:
        why = "the CUDA execution provider is not available (no NVIDIA driver or onnxruntime-gpu)"
        if cuda_driver_present():
            try:
                if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, when installed
                    ort.preload_dlls()
                self.decoder = ort.InferenceSession(str(self.bundle.file(self.bundle.decoder.file)),
                                                    sess_options=self._opts, providers=[CUDA, CPU])
                if self.decoder.get_providers()[0] == CUDA:
                    self.provider, self.device = CUDA, "cuda"
                    self.condition = self._session(self.bundle.condition.file, [CUDA, CPU])
                    self._check_io()
                    cross = self.cross_kv(None, None)  # one real step on the GPU, or back to the CPU
                    self.decode(np.array([self.bundle.bos], np.int64), self.empty_cache(capacity=2), cross)
                    return
                why = "ONNX Runtime fell back from CUDA (CUDA/cuDNN libraries missing?)"
            except Exception as e:
                why = f"CUDA probe failed: {first_line(e)}"
            self.provider, self.device = CPU, "cpu"
        self.cuda_unavailable_reason = why
        if required:
            raise DeviceError(f"device 'cuda' requested but {why}")

    @property
    def image_encoder(self) -> ort.InferenceSession:
        """Opened on first use (VA-only generation never needs it)."""
        if self._image_encoder is None:
            c = self.bundle.image_encoder
            session = self._session(c.file, self._providers())
            self._check_inputs(session, c.file, {"image": [3, c.size, c.size]})
            self._image_encoder = session
        return self._image_encoder

    def _check_io(self) -> None:
        want = {"input_ids", "positions"} | {f"{k}_{i}" for i in range(self.n_layers)
                                             for k in ("past_key", "past_value", "cross_key", "cross_value")}
        want |= {"cache_len"} if self.fixed else set()
        have = {i.name for i in self.decoder.get_inputs()}
        if want - have:
            raise BundleError(f"bundle {self.bundle.path}: {self.bundle.decoder.file} lacks inputs "
                              f"{sorted(want - have)[:3]} (config.json says {self.n_layers} layers)")
        outs = [o.name for o in self.decoder.get_outputs()]
        self._present = [o for o in outs if o.startswith("present_")]
        self._new = [o for o in outs if o.startswith("new_")]
        if len(self._new if self.fixed else self._present) != 2 * self.n_layers:
            raise BundleError(f"bundle {self.bundle.path}: {self.bundle.decoder.file} does not output the "
                              f"{'new_*' if self.fixed else 'present_*'} keys/values of format {self.bundle.format}")
        self._cross_names = [o.name for o in self.condition.get_outputs()]
        c = self.bundle.image_encoder
        self._check_inputs(self.condition, self.bundle.condition.file,
                           {"va": [2], "use_va": [1], "image_tokens": [c.image_tokens, c.dim], "use_image": [1]})
        vocab = [o.shape[-1] for o in self.decoder.get_outputs() if o.name == "logits"]
        if vocab and isinstance(vocab[0], int) and vocab[0] != self.bundle.decoder.vocab_size:
            raise BundleError(f"bundle {self.bundle.path}: {self.bundle.decoder.file} gives {vocab[0]} logits "
                              f"but config.json says vocab_size {self.bundle.decoder.vocab_size}")

    def _check_inputs(self, session: ort.InferenceSession, file: str, want: dict) -> None:
        """Every input in ``want`` exists and its fixed trailing dimensions match the config."""
        have = {i.name: i.shape for i in session.get_inputs()}
        for name, dims in want.items():
            if name not in have:
                raise BundleError(f"bundle {self.bundle.path}: {file} has no input '{name}'")
            tail = have[name][-len(dims):]
            if any(isinstance(g, int) and g != d for g, d in zip(tail, dims)):
                raise BundleError(f"bundle {self.bundle.path}: {file} input '{name}' has shape {have[name]}, "
                                  f"config.json implies [..., {', '.join(map(str, dims))}]")

    # -- running ---------------------------------------------------------------------------
    def encode_image(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """RGB uint8 (H, W, 3) -> (image tokens [Ni, Dc] float32, (valence, arousal) on 1-9)."""
        c = self.bundle.image_encoder
        x = preprocess(rgb, c.size, c.mean, c.std)[None]
        tokens, va = self.image_encoder.run(["image_tokens", "va"], {"image": x})
        return tokens[0], (float(va[0, 0]), float(va[0, 1]))

    def cross_kv(self, va: tuple[float, float] | None, image_tokens: np.ndarray | None) -> dict:
        """Condition -> {"cross_key_0": OrtValue, ...} on this runtime's device.
        ``None`` parts are switched off (the model's learned null embeddings stand in)."""
        c = self.bundle.image_encoder
        feeds = {
            "va": np.asarray([va if va is not None else (5.0, 5.0)], np.float32),
            "use_va": np.asarray([[1.0 if va is not None else 0.0]], np.float32),
            "image_tokens": (np.zeros((1, c.image_tokens, c.dim), np.float32) if image_tokens is None
                             else np.asarray(image_tokens, np.float32).reshape(1, c.image_tokens, c.dim)),
            "use_image": np.asarray([[1.0 if image_tokens is not None else 0.0]], np.float32),
        }
        io = self.condition.io_binding()
        for k, v in feeds.items():
            io.bind_cpu_input(k, v)
        for name in self._cross_names:
            io.bind_output(name, self.device)
        self.condition.run_with_iobinding(io)
        return dict(zip(self._cross_names, io.get_outputs()))

    def empty_cache(self, batch: int = 1, capacity: int | None = None):
        """An empty cache for ``batch`` rows: format 1 a :class:`KVCache` (zero-size past on the
        host), format 2 a :class:`FixedKVCache` of ``capacity`` positions (default max_context)."""
        if self.fixed:
            return FixedKVCache(self.n_layers, batch, self.n_heads, int(capacity or self.bundle.decoder.max_context),
                                self.head_dim)
        z = np.zeros((batch, self.n_heads, 0, self.head_dim), np.float32)  # zero-size: lives on the host
        past = {f"past_{k}_{i}": ort.OrtValue.ortvalue_from_numpy(z)
                for i in range(self.n_layers) for k in ("key", "value")}
        return KVCache(past, 0)

    def stack_caches(self, caches: list):
        """One cache whose rows are the rows of ``caches`` (all of the same length), in order."""
        if self.fixed:
            return FixedKVCache.stack(caches)
        if len({c.length for c in caches}) != 1:
            raise ValueError("format-1 caches of different lengths cannot share a batch")
        past = {n: self._ortvalue(np.concatenate([c.past[n].numpy() for c in caches])) for n in caches[0].past}
        return KVCache(past, caches[0].length)

    def select_rows(self, cache, rows: list[int]):
        """A new cache with copies of the rows ``rows`` of ``cache``."""
        if self.fixed:
            return cache.rows(rows)
        return KVCache({n: self._ortvalue(v.numpy()[rows]) for n, v in cache.past.items()}, cache.length)

    def stack_cross(self, crosses: list[dict]) -> dict:
        """Cross K/V whose batch rows are those of ``crosses`` in order (e.g. [conditioned, null])."""
        return {n: self._ortvalue(np.concatenate([c[n].numpy() for c in crosses])) for n in crosses[0]}

    def _ortvalue(self, a: np.ndarray) -> ort.OrtValue:
        a = np.ascontiguousarray(a)
        return ort.OrtValue.ortvalue_from_numpy(a, self.device, 0) if self.device != "cpu" \
            else ort.OrtValue.ortvalue_from_numpy(a)

    def decode(self, ids, cache, cross: dict, positions=None) -> np.ndarray:
        """Run new token ids [T] (or [B, T]: one row per cache row) after ``cache``; returns logits
        [T, V] (or [B, T, V]) and grows ``cache`` by T in place.

        ``positions`` default to each row's ``cache.length .. cache.length + T - 1``."""
        ids = np.asarray(ids, np.int64)
        single = ids.ndim == 1
        ids = ids.reshape(1, -1) if single else ids
        b, t = ids.shape
        if self.fixed:
            pos = None if positions is None else np.broadcast_to(np.asarray(positions, np.int64), (b, t))
            logits = decode_fixed(self.decoder, cache, cross, ids, pos, self.vocab_size, self._new)
            return logits[0] if single else logits
        pos = (np.arange(cache.length, cache.length + t, dtype=np.int64)[None] if positions is None
               else np.asarray(positions, np.int64))
        pos = np.ascontiguousarray(np.broadcast_to(pos, (b, t)))
        io = self.decoder.io_binding()
        io.bind_cpu_input("input_ids", ids)
        io.bind_cpu_input("positions", pos)
        for name, value in cache.past.items():
            io.bind_ortvalue_input(name, value)
        for name, value in cross.items():
            io.bind_ortvalue_input(name, value)
        io.bind_output("logits", "cpu")
        for name in self._present:
            io.bind_output(name, self.device)
        self.decoder.run_with_iobinding(io)
        out = io.get_outputs()
        logits = out[0].numpy()
        cache.past = {name.replace("present_", "past_", 1): v for name, v in zip(self._present, out[1:])}
        cache.length += t
        return logits[0] if single else logits
