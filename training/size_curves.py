"""Validation loss against tokens seen, per model size:
``python -m training.size_curves --run small=runs/small_pretrain --run large=runs/large_pretrain``
writes docs/figures/training_sizes.png and the table in docs/training.md.

A run is its out_dir (``log.json`` + ``model.safetensors``) or a file written by ``training.publish``
(history in its metadata), so the comparison can be redrawn in a checkout without ``runs/``.
Tokens seen = steps x batch x context (window positions, padding included).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from training.train import checkpoint_metadata

DOC_START, DOC_END = "<!-- size-curves:start -->", "<!-- size-curves:end -->"


def load_run(path: str | Path) -> dict:
    """-> {"history", "train_config", "model_config", "step", "params"} of a run folder or published file."""
    path = Path(path)
    ckpt = path / "model.safetensors" if path.is_dir() else path
    meta = checkpoint_metadata(ckpt)
    if path.is_dir():
        history = json.loads((path / "log.json").read_text())
    else:
        history = json.loads(meta["history"])
    from safetensors import safe_open
    with safe_open(str(ckpt), framework="pt") as f:
        params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
    return {"history": history, "train_config": json.loads(meta["train_config"]),
            "model_config": json.loads(meta["model_config"]), "step": int(meta["step"]), "params": params}


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def tokens_per_step(run: dict) -> int:
    return int(run["train_config"]["batch_size"]) * int(run["model_config"]["max_context"])


def curves(runs: dict[str, dict]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{run: {val set: [(tokens seen, loss)]}}."""
    return {name: {s: [(step * tokens_per_step(r), loss) for step, loss in pts]
                   for s, pts in r["history"]["val"].items()}
            for name, r in runs.items()}


def plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, vset in zip(axes, ("eimg", "pop909")):
        for name, c in curves(runs).items():
            pts = c.get(vset, [])
            if pts:
                t, l = zip(*pts)
                ax.plot([x / 1e6 for x in t], l, "o-", ms=3,
                        label=f"{name} ({runs[name]['params'] / 1e6:.1f} M)")
        ax.set_title(f"validation: {vset} (held-out split)")
        ax.set_xlabel("tokens seen (M)")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(runs: dict[str, dict]) -> str:
    """A markdown table: each run's loss at the token counts both runs reached."""
    c = curves(runs)
    rows = ["| run | parameters | steps | tokens seen | val EIMG | val POP909 | val EIMG at equal tokens | val POP909 at equal tokens |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    common = min(max((t for t, _ in c[n].get("eimg", [(0, 0)])), default=0) for n in c)
    for name, r in runs.items():
        def at(vset, limit=None):
            pts = [(t, l) for t, l in c[name].get(vset, []) if limit is None or t <= limit]
            return f"{pts[-1][1]:.3f}" if pts else "—"
        rows.append(f"| {name} | {r['params'] / 1e6:.2f} M | {r['step']} | {r['step'] * tokens_per_step(r) / 1e6:.2f} M "
                    f"| {at('eimg')} | {at('pop909')} | {at('eimg', common)} | {at('pop909', common)} |")
    rows.append(f"\nEqual tokens: {common / 1e6:.2f} M (the most both runs have seen).")
    return "\n".join(rows)


def write_doc(doc: Path, body: str) -> None:
    text = doc.read_text() if doc.is_file() else ""
    block = f"{DOC_START}\n{body}\n{DOC_END}"
    if DOC_START in text:
        head, rest = text.split(DOC_START, 1)
        text = head + block + rest.split(DOC_END, 1)[1]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    doc.write_text(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True, metavar="NAME=PATH",
                    help="a run folder or a published weights file")
    ap.add_argument("--figure", default="docs/figures/training_sizes.png")
    ap.add_argument("--doc", default="docs/training.md")
    args = ap.parse_args(argv)
    runs = {n: load_run(p) for n, p in (r.split("=", 1) for r in args.run)}
    plot(runs, Path(args.figure))
    rel = os.path.relpath(args.figure, Path(args.doc).parent)
    body = table(runs) + f"\n\n![validation loss against tokens seen]({rel})"
    write_doc(Path(args.doc), body)
    print(table(runs))


if __name__ == "__main__":
    main()
