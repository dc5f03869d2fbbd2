"""Published music-quality numbers of the paper we follow, as plain data.

Kundu, Singh & Iwahori (2024), *Emotion-Guided Image to Music Generation*, arXiv 2410.22299.
Its Music_Quality_Loss is ``sum(|v - ref| / ref)`` over (polyphony rate, pitch entropy,
groove consistency) with MusPy's ``polyphony_rate(threshold=2)``, ``pitch_entropy`` and
``groove_consistency(measure_resolution=4)`` (see :mod:`engine.music.metrics`).

Provenance
----------
``AUTHOR_RESULTS``: every row of ``Results_music_Quality.txt`` in the authors' repository
https://github.com/SourajaKundu/Emotion-Guided-Image-to-Music-Generation (file at commit
7fbb6a9dc2efa8a36cf0fb3182ae6ef636c048ab), printed by their ``Music_Quality.py``
as ``(loss, [polyphony_rate, pitch_entropy, groove_consistency])`` at full precision. Their
reference values are ``dataset_eval`` in that ``Music_Quality.py`` (``REFERENCE_FULL`` in
:mod:`engine.music.metrics`). The model names and notes are the log's own words.

``PAPER_ROWS``: rows of the paper's Tables 1-2 (4 decimals) that we could verify. The text
of the tables was not reachable with this project's search tools (arXiv abstract/HTML,
Moonlight, emergentmind, aitopics, deeppaper pages gave abstracts and summaries only); the
one row below is a second-hand quotation of the paper and equals the log's ``LSTM_enc2`` row
rounded to 4 decimals. Add rows here only from the paper itself.

Note: LSTM_enc2's printed loss (1.915670) is 9.2e-6 below the sum computed from its printed
metrics (1.915679); the other eleven rows are reproduced to the last bit.
"""
from __future__ import annotations

from dataclasses import dataclass

SOURCE_REPO = "https://github.com/SourajaKundu/Emotion-Guided-Image-to-Music-Generation"
SOURCE_FILE = "Results_music_Quality.txt"
SOURCE_COMMIT = "7fbb6a9dc2efa8a36cf0fb3182ae6ef636c048ab"
PAPER = "Kundu, Singh & Iwahori (2024), Emotion-Guided Image to Music Generation, arXiv 2410.22299"


@dataclass(frozen=True)
class QualityRow:
    model: str
    polyphony_rate: float
    pitch_entropy: float
    groove_consistency: float
    music_quality_loss: float
    note: str = ""


AUTHOR_RESULTS: tuple[QualityRow, ...] = (
    QualityRow("Trans_enc3_Dec3_VA_loss", 0.0, 1.0, 0.9991698590906684, 1.7561844621959046,
               "after 2 epochs on dataset 1"),
    QualityRow("Trans_enc3_dec3_VGG16", 0.6974965350373236, 1.9973821232139124, 0.999484228601697,
               0.8215898602279771, "after 2 epochs on dataset1"),
    QualityRow("Trans_enc3_dec3_InceptionV3", 0.628861350263356, 1.3641752453702733, 0.9998553689784336,
               0.8513814958698785, "after 2 epochs on dataset1"),
    QualityRow("LSTM_enc2", 0.031746031746031744, 0.12039623017017707, 0.9978836669913698,
               1.915670081076522),
    QualityRow("Trans_enc2", 0.265161358996448, 3.4303629925403585, 0.9997748689608303,
               0.6470958512340899),
    QualityRow("Trans_enc4", 0.09058849399282504, 1.9930787583758538, 0.9997371003084052,
               1.3368091104752797),
    QualityRow("Trans_enc3", 0.3468818790480989, 3.1406775389868553, 0.9998024218082437,
               0.5656907202395136),
    QualityRow("Trans_enc2_dec2", 0.0, 0.0, 0.9999007936507948, 2.007779075580778),
    QualityRow("VA loss", 0.7818120122158126, 3.0931619605047214, 0.9998533617722624,
               0.7060730296036672, "4 music"),
    QualityRow("VA loss", 0.03925107150913607, 2.8618417864459555, 0.9998756619724378,
               1.215821167279623, "100 music"),
    QualityRow("without VA loss", 0.008691453404152583, 2.8136529081962003, 0.9997292543284818,
               1.2853893396223304, "4 music"),
    QualityRow("without VA loss", 0.09659685863874344, 3.463967371484066, 0.9998931064572406,
               0.9566521379968294, "100 music"),
)

PAPER_ROWS: tuple[QualityRow, ...] = (
    QualityRow("LSTM_enc2", 0.0317, 0.1204, 0.9978, 1.9157,
               "quoted second-hand; = AUTHOR_RESULTS LSTM_enc2 rounded"),
)
