"""Write docs/emotion.md from training.emotion_eval results (the JSON it writes)."""
from __future__ import annotations

from pathlib import Path

NAMES = {"major": "major key (0/1)", "bpm": "tempo", "notes_per_second": "notes per second", "velocity": "velocity",
         "register": "mean pitch", "log_note_seconds": "note length (log s)", "polyphony": "notes sounding"}


def _f(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def write_doc(res: dict, path) -> None:
    b, a, e, j = res.get("before"), res.get("after"), res["eimg"], res["judge"]
    parts = [p for p in (("before (attributes off)", b), ("after (attributes on, default)", a)) if p[1]]
    L = ["# Emotion you can hear: measurements", "",
         "Written by `python -m training.emotion_eval` (see the command at the end). Bundle: "
         f"`{res['bundle']}`, default sampling (temperature 1, top-p 0.95), emotion strength 2, 4/4, "
         f"{res['seconds']:g}-second clips (sanity runs: {res.get('sanity_seconds', res['seconds']):g} s). "
         "*Before* = the model with only the sanity rules; *after* = `moodroll generate`'s default: the "
         "VA → attribute plan (engine/emotion/attributes.py) as key lock, tempo lock and soft biases.", "",
         "## The judge (engine/emotion/judge.py)", "",
         "Hand-crafted features of the notes in seconds (onset rate, velocity, pitch, Krumhansl–Schmuckler "
         "major−minor, polyphony, note length, …) and a ridge fit on EIMG's seeded train split "
         f"({j['train_clips']} clips, `split_eimg(seed=0)`). Never used to train or select a model.", "",
         "| | valence r | arousal r | valence MAE | arousal MAE | MAE of predicting the mean |", "| --- | --- | --- | --- | --- | --- |"]
    for name, m in (("EIMG train", j["train"]), ("EIMG hold-out (test + val)", j["holdout"])):
        L.append(f"| {name} ({m['clips']}) | {_f(m['r_valence'])} | {_f(m['r_arousal'])} | {_f(m['mae_valence'])} | "
                 f"{_f(m['mae_arousal'])} | {_f(m['mae_mean_valence'])} / {_f(m['mae_mean_arousal'])} |")
    vg = j["vgmidi"]
    L += ["", f"On VGMIDI (another data set; {vg['pieces']} pieces, labels = sign of valence) the judge's valence "
          f"separates positive from negative pieces with AUC {vg['valence_auc']:.2f}.", "",
          "## Controllability: 5 × 5 VA grid (2 … 8), VA only", "",
          "| | judge r valence | judge r arousal | predictor r valence | predictor r arousal | degenerate |",
          "| --- | --- | --- | --- | --- | --- |"]
    for name, part in parts:
        g = part["grid"]
        pr = g.get("predictor_r") or {}
        L.append(f"| {name} | **{_f(g['judge_r_valence'])}** | **{_f(g['judge_r_arousal'])}** | "
                 f"{_f(pr.get('valence'))} | {_f(pr.get('arousal'))} | {g['degenerate']} / {g['clips']} |")
    L += ["", "The predictor is training/va_predictor.py, the one the shipped model's VA loss trained against: "
          "a secondary check only.", "", "Each attribute's Pearson r with the requested VA (grid) beside EIMG's "
          "own (hold-out clips against their labels):", "",
          "| attribute | EIMG r(V) | EIMG r(A) | " + " | ".join(f"{n.split(' ')[0]} r(V) | {n.split(' ')[0]} r(A)"
                                                            for n, _ in parts) + " |",
          "| --- | --- | --- | " + " | ".join("--- | ---" for _ in parts) + " |"]
    for k, label in NAMES.items():
        ev = e["correlations"]["attributes_r"][k]
        row = f"| {label} | {_f(ev['valence'])} | {_f(ev['arousal'])} | "
        row += " | ".join(f"{_f(p['grid']['attributes_r'][k]['valence'])} | {_f(p['grid']['attributes_r'][k]['arousal'])}"
                          for _, p in parts)
        L.append(row + " |")
    L += ["", "## Pictures: OASIS hold-out (`split_oasis(seed=0)`), r against the rated VA", "",
          "| | pictures | judge r valence | judge r arousal | image head r valence | image head r arousal |",
          "| --- | --- | --- | --- | --- | --- |"]
    for name, part in parts:
        p = part["pictures"]
        L.append(f"| {name} | {p['pictures']} | **{_f(p['judge_r_valence'])}** | **{_f(p['judge_r_arousal'])}** | "
                 f"{_f(p['head_r_valence'])} | {_f(p['head_r_arousal'])} |")
    L += ["", "## Sanity: degenerate clips over the grid (> 20 notes/s, > 10 sounding, tempo outside 50–190)", "",
          "| | emotion strength | degenerate | most notes/s | most sounding | tempo range | clips with a tempo change |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, part in parts:
        for w, s in part["sanity"].items():
            L.append(f"| {name} | {w[1:]} | **{s['degenerate']}** / {s['clips']} | {_f(s['max_notes_per_second'], 1)} | "
                     f"{s['max_sounding']} | {s['tempo_range'][0]:.0f}–{s['tempo_range'][1]:.0f} | "
                     f"{s['clips_with_tempo_changes']} |")
    L += ["", "## Quality against EIMG", "",
          "| | Music_Quality_Loss | polyphony rate | pitch entropy | groove | notes/s 10/50/90 % | tempo 10/50/90 % | "
          "sounding 10/50/90 % |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [("EIMG hold-out clips", e["quality"])] + [(n, p["grid"]["quality"]) for n, p in parts]
    for name, q in rows:
        L.append(f"| {name} | **{q['music_quality_loss']:.3f}** | {q['polyphony_rate']:.3f} | {q['pitch_entropy']:.2f} | "
                 f"{q['groove_consistency']:.3f} | " + " | ".join("/".join(f"{x:.1f}" for x in q[k]) for k in
                 ("notes_per_second_p10_50_90", "tempo_p10_50_90", "polyphony_p10_50_90")) + " |")
    L += ["", "## Reproduce", "", "```bash", "python -m training.fit_emotion      # judge.json + attributes.json",
          res.get("command", "python -m training.emotion_eval --out runs/emotion/eval.json --doc docs/emotion.md"),
          "```", ""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(L))
