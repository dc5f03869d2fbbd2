"""Write a bundle's ``model_card.md`` from the training runs and the measured results.

    python -m training.model_card --stages runs/default_pretrain runs/default_finetune runs/default_va_l0.5 \
        --eval runs/eval/default_va_l0.5.json --compare "λ = 0=runs/eval/default_va_l0.json" ... \
        --bundle assets/models/default

It renders the card from the checkpoints' own metadata (configs, steps), their loss logs and
the JSON of ``training.evaluate`` (the shipped model's, and ``--compare`` runs beside it),
writes it into the bundle and refreshes the manifest.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from training.export import write_manifest
from training.train import load_checkpoint, plot_va_curve
from training.va_head import load_va_head


def _f(x, nd=3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _run(folder: Path) -> dict:
    model, meta = load_checkpoint(folder / "model.safetensors")
    log = json.loads((folder / "log.json").read_text())
    return {"meta": meta, "params": model.num_params(), "log": log}


def _stage_row(run: dict, mc: dict) -> str:
    c, step = run["meta"]["train_config"], run["meta"]["step"]
    tokens = c["batch_size"] * mc["max_context"] * step / 1e6
    if c["stage"] == "pretrain":
        what = (f"pre-train | POP909 (split_eimg-proportion train split, 874 songs, unconditioned) + VGMIDI train "
                f"(VA) + EIMG train split (2,596 clips, VA), mix {c['mix']}, transposition ±{c['transpose']}")
    else:
        init = Path(c["init_from"]).parent.name if c.get("init_from") else "scratch"
        what = (f"fine-tune from `{init}`, lr {c['lr']:g} | EIMG train clips paired with OASIS train pictures "
                f"(`training.data.paired_splits`, seed {c['data_seed']}): clip VA + picture image tokens, dropped "
                f"with p={c['p_drop_va']} / {c['p_drop_image']}; {c['finetune_pop909']:.0%} unconditioned POP909")
        if c.get("va_loss_weight", 0) > 0:
            what += f"; **+ differentiable VA loss, λ = {c['va_loss_weight']:g}**"
    return (f"| {what} | {step} | {c['batch_size']} × {mc['max_context']} ({tokens:.1f} M tokens) | "
            f"{_f(run['log']['train'][-1][1])} |")


def _alignment_rows(gen: dict, sets) -> list[str]:
    rows = []
    for name, label in sets:
        if name not in gen:
            continue
        a, q = gen[name]["alignment_vs_rated_va"], gen[name]["quality"]
        rows.append(f"| {label} | {_f(a['valence_r'])} | {_f(a['arousal_r'])} | {_f(a['valence_mae'])} | "
                    f"{_f(a['arousal_mae'])} | {_f(q['music_quality_loss'])} |")
    return rows


def _feature_table(columns: list[tuple[str, dict]]) -> list[str]:
    """Rows = features × (valence, arousal), columns = sets of feature correlations."""
    from training.evaluate import FEATURES
    head = "| feature | " + " | ".join(n for n, _ in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for dim in ("valence", "arousal"):
        for f in FEATURES:
            cells = [_f(c[dim][f], 2) if c else "n/a" for _, c in columns]
            lines.append(f"| {dim} ↔ {f.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return lines


def render(stages: list[dict], ev: dict, head: dict, bundle: Path, compare: list[tuple[str, dict]] = (),
           extra: str = "", commands: list[str] = ()) -> str:
    final = stages[-1]
    mc = final["meta"]["model_config"]
    gen, grid = ev["generation"], ev["va_grid"]
    L = ev.get("losses", {})
    w = max(gen["guidance"])
    size = sum(p.stat().st_size for p in bundle.iterdir() if p.is_file() and p.name != "model_card.md")
    lines = [
        "# Moodroll default model",
        "",
        "Picture and/or valence-arousal (VA, 1-9) → piano REMI tokens. A Transformer decoder "
        f"({final['params'] / 1e6:.2f} M parameters: d_model {mc['d_model']}, {mc['n_layers']} layers, "
        f"{mc['n_heads']} heads, feed-forward {mc['d_ff']}, RoPE, context {mc['max_context']} tokens, "
        f"re-prime keep {mc['reprime_keep']}) with cross-attention to a {1 + mc['image_tokens']}-vector condition "
        f"memory (a VA embedding + {mc['image_tokens']} image tokens of a frozen ImageNet "
        f"EfficientNet-Lite0, {mc['image_dim']}-d). Condition dropout during training, so image-only, VA-only "
        "and unconditioned generation all work. Format: docs/bundle.md. "
        f"Bundle size {size / 1e6:.1f} MB (float32 ONNX).",
        "",
        "## Training (CPU, 1 thread per run on a shared 2-core machine)",
        "",
        "| stage | data | steps | batch × tokens | final train loss |",
        "| --- | --- | --- | --- | --- |",
        *[_stage_row(r, mc) for r in stages],
        "",
        "Loss curves: `training_curves.png` beside this card. Exact commands (from the repository root):",
        "",
        "```bash",
        *commands,
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
        for k, (s_, c) in names.items():
            if k in L:
                lines.append(f"| {s_} | {c} | {_f(L[k]['cross_entropy'])} | {_f(L[k]['perplexity'], 2)} | "
                             f"{L[k]['windows']} |")
        lines.append("")
    sets = [(f"image_w{g:g}", f"picture-conditioned, emotion strength w = {g:g}"
             + (" (engine default)" if g == w else " (guidance off)" if g == 1 else "")) for g in gen["guidance"]]
    sets.append(("unconditioned", "unconditioned (baseline)"))
    ref = gen[sets[0][0]]["quality"]["reference"]
    lines += [
        f"## Generated music ({gen['pictures']} OASIS hold-out pictures, one {gen['seconds']:.0f}-second clip "
        "per picture and setting)",
        "",
        "Generated through the shipped path: `engine.model.generator.MusicGenerator` on this bundle (ONNX Runtime, "
        "the engine's grammar masks, default sampling: temperature 1.0, top-p 0.95, seed 1000 + i), "
        "conditioned on the picture's image tokens and its VA estimate (as the app does) at each emotion "
        "strength (classifier-free guidance weight w; the apps default to w = "
        f"{w:g}), and unconditioned with the same seeds. Clips are cut at 15 s and written at 480 ticks per "
        "quarter, like the app's files and the EIMG clips.",
        "",
        f"### Music quality (engine/music/metrics.py, MusPy definitions; first {gen[sets[0][0]]['quality']['clips']} "
        "clips of each set)",
        "",
        "| | polyphony rate | pitch entropy | groove consistency | Music_Quality_Loss |",
        "| --- | --- | --- | --- | --- |",
        f"| reference (EIMG means) | {ref[0]} | {ref[1]} | {ref[2]} | 0 |",
    ]
    for name, label in sets:
        q = gen[name]["quality"]
        lines.append(f"| {label} | {_f(q['polyphony_rate'])} | {_f(q['pitch_entropy'])} | "
                     f"{_f(q['groove_consistency'])} | **{_f(q['music_quality_loss'])}** |")
    lines += [
        "| paper's best (Kundu et al. 2024) | | | | 0.7061 |",
        "",
        "### Emotional alignment",
        "",
        "VA of each clip from the music VA predictor (`training/weights/music_va.safetensors`, "
        "`training.va_predictor`) against the picture's rated VA (OASIS means on 1-9):",
        "",
        "| generation | valence r | arousal r | valence MAE | arousal MAE | Music_Quality_Loss |",
        "| --- | --- | --- | --- | --- | --- |",
        *_alignment_rows(gen, sets),
        "",
    ]
    h = gen["image_va_head_on_these_pictures"]
    cond = [(lab, gen[n]["alignment_vs_condition_va"]) for n, lab in sets if gen[n]["alignment_vs_condition_va"]]
    lines += ["Against the VA the model was conditioned on (the head's estimate): "
              + "; ".join(f"{lab}: valence r {_f(a['valence_r'])}, arousal r {_f(a['arousal_r'])}" for lab, a in cond)
              + f". The head's estimate vs the rated VA on these pictures: valence r {_f(h['valence_r'])}, "
              f"arousal r {_f(h['arousal_r'])} — the ceiling of the picture → music chain.",
              "",
              f"### Controllability: VA-only grid ({len(grid['values'])} × {len(grid['values'])} VA points "
              f"{grid['values']}, {grid['seeds']} clips each, w = {grid['guidance']:g}, no pictures)",
              "",
              f"Music VA vs requested VA: valence r {_f(grid['alignment_vs_condition_va']['valence_r'])}, arousal r "
              f"{_f(grid['alignment_vs_condition_va']['arousal_r'])} (MAE "
              f"{_f(grid['alignment_vs_condition_va']['valence_mae'])} / "
              f"{_f(grid['alignment_vs_condition_va']['arousal_mae'])}); Music_Quality_Loss "
              f"{_f(grid['quality']['music_quality_loss'])}.",
              "",
              "### A check without the music VA predictor",
              "",
              "Pearson r of interpretable clip features (engine/music/metrics.py) with VA. EIMG's own held-out clips "
              "against their labels show how the data ties them together; the generated clips should move the "
              "same way with the VA they were asked for. This does not involve the predictor that the VA loss "
              "trains against.",
              "",
              *_feature_table([("EIMG clips vs labels", ev.get("eimg_reference_features", {}).get("r")),
                               ("VA grid vs requested VA", grid["features_vs_condition_va"]),
                               (f"pictures (w = {w:g}) vs conditioned VA", gen[f"image_w{w:g}"]["features_vs_condition_va"]),
                               (f"pictures (w = {w:g}) vs rated VA", gen[f"image_w{w:g}"]["features_vs_rated_va"])]),
              ""]
    if compare:
        lines += ["## With and without the VA loss", "",
                  "Same initial weights, data, seeds and steps; only the weight λ of the differentiable VA loss "
                  "differs. Chosen for shipping by the VA-grid probe (no hold-out pictures).", "",
                  f"| run | EIMG test CE (VA + picture) | grid valence r | grid arousal r | grid MQL | hold-out "
                  f"valence r (w = {w:g}) | hold-out arousal r (w = {w:g}) | hold-out MQL (w = {w:g}) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, e in compare:
            g, gg = e["va_grid"], e.get("generation", {}).get(f"image_w{w:g}")
            ce = e.get("losses", {}).get("eimg_test_image_va", {}).get("cross_entropy")
            lines.append(
                f"| {name} | {_f(ce)} | {_f(g['alignment_vs_condition_va']['valence_r'])} | "
                f"{_f(g['alignment_vs_condition_va']['arousal_r'])} | {_f(g['quality']['music_quality_loss'])} | "
                + (f"{_f(gg['alignment_vs_rated_va']['valence_r'])} | {_f(gg['alignment_vs_rated_va']['arousal_r'])} | "
                   f"{_f(gg['quality']['music_quality_loss'])} |" if gg else "n/a | n/a | n/a |"))
        lines.append("")
    if extra:
        lines += [extra.strip(), ""]
    lines += ["## Limits", "",
              "Trained briefly (wall-clock times above) on one shared CPU core: the language model is far from "
              "converged and the numbers above are those of a small, briefly trained model. "
              "POP909 dominates the pre-training data (pop piano). The emotion labels come from "
              "six annotators (EIMG) and the VA predictor used for the alignment numbers is itself "
              "an imperfect model (see training/weights/music_va.json); a model fine-tuned against it "
              "(the VA loss) is measured by it too, hence the feature check above.", ""]
    return "\n".join(lines)


def plot_curves(stages: list[dict], path: Path) -> None:
    """Every stage's loss curves side by side (shipped as training_curves.png)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], stages):
        c = run["meta"]["train_config"]
        s, l = zip(*run["log"]["train"])
        ax.plot(s, l, label="train", alpha=0.6)
        for name, pts in run["log"]["val"].items():
            if pts:
                vs, vl = zip(*pts)
                ax.plot(vs, vl, "o-", label=f"val {name}")
        title = c["stage"] + (f" + VA loss (λ = {c['va_loss_weight']:g})" if c.get("va_loss_weight", 0) > 0 else "")
        ax.set_title(f"{Path(c['out_dir']).name}: {title}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        plot_va_curve(ax, run["log"])
    axes[0][0].set_ylabel("cross-entropy (nats/token)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write model_card.md into a bundle")
    ap.add_argument("--stages", nargs="+", required=True, help="the run folders, in training order")
    ap.add_argument("--eval", required=True, help="training.evaluate JSON of the shipped model")
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME=EVAL_JSON",
                    help="other runs' evaluations for the with/without table")
    ap.add_argument("--va-head", default="runs/va_head/efficientnet_lite0.safetensors")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--extra", default=None, help="a Markdown file appended before 'Limits'")
    ap.add_argument("--commands", default=None, help="a text file of the exact commands (shown verbatim)")
    args = ap.parse_args(argv)
    bundle = Path(args.bundle)
    _, head = load_va_head(args.va_head)
    stages = [_run(Path(p)) for p in args.stages]
    plot_curves(stages, bundle / "training_curves.png")
    compare = [(n, json.loads(Path(p).read_text())) for n, _, p in (c.rpartition("=") for c in args.compare)]
    commands = Path(args.commands).read_text().strip().splitlines() if args.commands else []
    card = render(stages, json.loads(Path(args.eval).read_text()), head, bundle, compare,
                  Path(args.extra).read_text() if args.extra else "", commands)
    (bundle / "model_card.md").write_text(card)
    write_manifest(bundle)
    print(card)


if __name__ == "__main__":
    main()
