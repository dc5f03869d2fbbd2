"""Write a bundle's ``model_card.md`` from the training runs and the measured results.

    python -m training.model_card --pretrain runs/default_pretrain --finetune runs/default_finetune \
        --eval runs/eval/default.json --va-head runs/va_head/efficientnet_lite0.safetensors \
        --bundle assets/models/default

It renders the card from the checkpoints' own metadata (configs, steps), their loss logs and
the JSON of ``training.evaluate``, writes it into the bundle and refreshes the manifest.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from training.export import write_manifest
from training.train import load_checkpoint
from training.va_head import load_va_head


def _f(x, nd=3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _run(folder: Path) -> dict:
    model, meta = load_checkpoint(folder / "model.safetensors")
    log = json.loads((folder / "log.json").read_text())
    return {"meta": meta, "params": model.num_params(), "log": log}


def render(pre: dict, ft: dict, ev: dict, head: dict, bundle: Path, extra: str = "") -> str:
    pc, fc = pre["meta"]["train_config"], ft["meta"]["train_config"]
    mc = ft["meta"]["model_config"]
    gen = ev["generation"]
    L = ev.get("losses", {})
    tokens_per_step = lambda c: c["batch_size"] * mc["max_context"]  # noqa: E731
    size = sum(p.stat().st_size for p in bundle.iterdir() if p.is_file() and p.name != "model_card.md")
    lines = [
        "# Moodroll default model",
        "",
        "Picture and/or valence-arousal (VA, 1-9) → piano REMI tokens. A Transformer decoder "
        f"({ft['params'] / 1e6:.2f} M parameters: d_model {mc['d_model']}, {mc['n_layers']} layers, "
        f"{mc['n_heads']} heads, feed-forward {mc['d_ff']}, RoPE, context {mc['max_context']} tokens, "
        f"re-prime keep {mc['reprime_keep']}) with cross-attention to a {1 + mc['image_tokens']}-vector condition "
        f"memory (a VA embedding + {mc['image_tokens']} image tokens of a frozen ImageNet "
        f"EfficientNet-Lite0, {mc['image_dim']}-d). Condition dropout during training, so image-only, VA-only "
        "and unconditioned generation all work. Format: docs/bundle.md. "
        f"Bundle size {size / 1e6:.1f} MB (float32 ONNX).",
        "",
        "## Training (CPU, 1 thread on a shared 2-core machine)",
        "",
        "| stage | data | steps | batch × tokens | final train loss |",
        "| --- | --- | --- | --- | --- |",
        f"| pre-train | POP909 (split_eimg-proportion train split, 874 songs, unconditioned) + VGMIDI train "
        f"(VA) + EIMG train split (2,596 clips, VA), mix {pc['mix']}, transposition ±{pc['transpose']} | "
        f"{pre['meta']['step']} | {pc['batch_size']} × {mc['max_context']} "
        f"({tokens_per_step(pc) * pre['meta']['step'] / 1e6:.1f} M tokens) | {_f(pre['log']['train'][-1][1])} |",
        f"| fine-tune | EIMG train clips paired with OASIS train pictures (`training.data.paired_splits`, seed "
        f"{fc['data_seed']}): clip VA + picture image tokens, dropped with p={fc['p_drop_va']} / "
        f"{fc['p_drop_image']}; {fc['finetune_pop909']:.0%} unconditioned POP909 | {ft['meta']['step']} | "
        f"{fc['batch_size']} × {mc['max_context']} ({tokens_per_step(fc) * ft['meta']['step'] / 1e6:.1f} M tokens)"
        f" | {_f(ft['log']['train'][-1][1])} |",
        "",
        "Loss curves: `training_curves.png` beside this card. Exact commands (from the repository root):",
        "",
        "```bash",
        ".venv/bin/python -m training.train --config training/configs/default_pretrain.json",
        ".venv/bin/python -m training.train --config training/configs/default_finetune.json",
        ".venv/bin/python -m training.va_head                      # image -> VA head (OASIS train split)",
        ".venv/bin/python -m training.export --checkpoint runs/default_finetune/model.safetensors "
        "--out assets/models/default",
        ".venv/bin/python -m training.evaluate --checkpoint runs/default_finetune/model.safetensors "
        "--bundle assets/models/default --out runs/eval/default.json",
        ".venv/bin/python -m training.evaluate --checkpoint runs/default_finetune/model.safetensors "
        "--bundle assets/models/default --out runs/eval/default_guided.json --skip-losses --guidance 2 --only-guided",
        ".venv/bin/python -m training.model_card --pretrain runs/default_pretrain --finetune "
        "runs/default_finetune --eval runs/eval/default.json --bundle assets/models/default "
        "--extra training/configs/default_card_extra.md",
        "```",
        "",
        "## Image → VA head (OASIS, `split_oasis` seed 0: "
        f"{head.get('n_train')} train / {head.get('n_test')} hold-out pictures)",
        "",
        f"Ridge regression on the pooled EfficientNet-Lite0 features (strength {head.get('alpha')} by 5-fold CV).",
        "",
        "| | Pearson r | MAE (1-9) | MAE of predicting the train mean |",
        "| --- | --- | --- | --- |",
        f"| valence | {_f(head.get('valence_r'))} | {_f(head.get('valence_mae'))} | "
        f"{_f(head.get('baseline', {}).get('valence_mae'))} |",
        f"| arousal | {_f(head.get('arousal_r'))} | {_f(head.get('arousal_mae'))} | "
        f"{_f(head.get('baseline', {}).get('arousal_mae'))} |",
        "",
    ]
    if L:
        lines += ["## Validation loss (held-out sets, cross-entropy in nats/token, fixed windows)", "",
                  "| set | condition | cross-entropy | perplexity | windows |", "| --- | --- | --- | --- | --- |"]
        names = {"eimg_test_image_va": ("EIMG test clips (90)", "VA + paired hold-out picture"),
                 "eimg_test_va_only": ("EIMG test clips", "VA only"),
                 "eimg_test_image_only": ("EIMG test clips", "picture only"),
                 "eimg_test_unconditioned": ("EIMG test clips", "none"),
                 "pop909_test_unconditioned": ("POP909 test songs (30)", "none")}
        for k, (s, c) in names.items():
            if k in L:
                lines.append(f"| {s} | {c} | {_f(L[k]['cross_entropy'])} | {_f(L[k]['perplexity'], 2)} | "
                             f"{L[k]['windows']} |")
        lines.append("")
    q_img, q_unc = gen["image"]["quality"], gen["unconditioned"]["quality"]
    lines += [
        f"## Generated music ({gen['pictures']} OASIS hold-out pictures, one {gen['seconds']:.0f}-second clip each)",
        "",
        "Generated through the shipped path: `engine.generator.MusicGenerator` on this bundle (ONNX Runtime, "
        "the engine's grammar masks, default sampling: temperature 1.0, top-p 0.95, seed 1000 + i), "
        "conditioned on the picture's image tokens and its VA estimate (as the app does), and "
        "unconditioned with the same seeds. Clips are cut at 15 s and written at 480 ticks per quarter, "
        "like the app's files and the EIMG clips.",
        "",
        f"### Music quality (engine/metrics.py, MusPy definitions; first {q_img['clips']} clips of each set)",
        "",
        "| | polyphony rate | pitch entropy | groove consistency | Music_Quality_Loss |",
        "| --- | --- | --- | --- | --- |",
        f"| reference (EIMG means) | {q_img['reference'][0]} | {q_img['reference'][1]} | {q_img['reference'][2]} | 0 |",
        f"| picture-conditioned | {_f(q_img['polyphony_rate'])} | {_f(q_img['pitch_entropy'])} | "
        f"{_f(q_img['groove_consistency'])} | **{_f(q_img['music_quality_loss'])}** |",
        f"| unconditioned | {_f(q_unc['polyphony_rate'])} | {_f(q_unc['pitch_entropy'])} | "
        f"{_f(q_unc['groove_consistency'])} | {_f(q_unc['music_quality_loss'])} |",
        "| paper's best (Kundu et al. 2024) | | | | 0.7061 |",
        "",
        "### Emotional alignment",
        "",
        "VA of each clip from the music VA predictor (`training/weights/music_va.safetensors`, "
        "`training.va_predictor`) against the picture's rated VA (OASIS means on 1-9):",
        "",
        "| generation | valence r | arousal r | valence MAE | arousal MAE |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, label in (("image", "picture-conditioned"), ("unconditioned", "unconditioned (baseline)")):
        a = gen[name]["alignment_vs_rated_va"]
        lines.append(f"| {label} | {_f(a['valence_r'])} | {_f(a['arousal_r'])} | {_f(a['valence_mae'])} | "
                     f"{_f(a['arousal_mae'])} |")
    a = gen["image"]["alignment_vs_condition_va"]
    h = gen["image_va_head_on_these_pictures"]
    lines += [
        "",
        f"For reference: music VA vs the VA the model was conditioned on (the head's estimate): valence r "
        f"{_f(a['valence_r'])}, arousal r {_f(a['arousal_r'])}; the head's estimate vs the rated VA on these "
        f"pictures: valence r {_f(h['valence_r'])}, arousal r {_f(h['arousal_r'])}.",
        "",
    ]
    if extra:
        lines += [extra.strip(), ""]
    lines += ["## Limits", "",
              "Trained briefly (wall-clock times above) on one shared CPU core: the language model is far from "
              "converged and the numbers above are those of a small, briefly trained model. "
              "POP909 dominates the pre-training data (pop piano). The emotion labels come from "
              "six annotators (EIMG) and the VA predictor used for the alignment numbers is itself "
              "an imperfect model (see training/weights/music_va.json).", ""]
    return "\n".join(lines)


def plot_curves(pre: dict, ft: dict, path: Path) -> None:
    """Both stages' loss curves side by side (shipped as training_curves.png)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, run, title in zip(axes, (pre, ft), ("pre-train", "fine-tune")):
        s, l = zip(*run["log"]["train"])
        ax.plot(s, l, label="train", alpha=0.6)
        for name, pts in run["log"]["val"].items():
            if pts:
                vs, vl = zip(*pts)
                ax.plot(vs, vl, "o-", label=f"val {name}")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("cross-entropy (nats/token)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write model_card.md into a bundle")
    ap.add_argument("--pretrain", required=True)
    ap.add_argument("--finetune", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--va-head", default="runs/va_head/efficientnet_lite0.safetensors")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--extra", default=None, help="a Markdown file appended before 'Limits'")
    args = ap.parse_args(argv)
    bundle = Path(args.bundle)
    _, head = load_va_head(args.va_head)
    pre, ft = _run(Path(args.pretrain)), _run(Path(args.finetune))
    plot_curves(pre, ft, bundle / "training_curves.png")
    card = render(pre, ft, json.loads(Path(args.eval).read_text()), head, bundle,
                  Path(args.extra).read_text() if args.extra else "")
    (bundle / "model_card.md").write_text(card)
    write_manifest(bundle)
    print(card)


if __name__ == "__main__":
    main()
