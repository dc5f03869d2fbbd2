"""Reproduction of Kundu, Singh & Iwahori (2024), *Emotion-Guided Image to Music Generation*
(arXiv 2410.22299): their CNN-Transformer model, the Show-and-Listen LSTM baseline, the
VA loss, and the paper's Tables 1-2 and Figure 3 (``python -m training.reproduce``).

- :mod:`training.paper.models`   the paper's model (image features + Transformer MIDI encoder,
                                 global average pooling, merge, Transformer decoder, dense ReLU)
                                 and the paper's VGG16 feature head
- :mod:`training.paper.baseline` Show and Listen (Mendis & Bandara): VGG16 features + 2 LSTMs
- :mod:`training.paper.losses`   cross-entropy, the paper's VA loss, a differentiable VA loss
- :mod:`training.paper.loop`     data, seeded resumable training, safetensors checkpoints
- :mod:`training.paper.generate` image -> clip generation and its metrics
- :mod:`training.paper.reproduce` every row, the report docs/reproduction.md and its figure
"""
