"""Evaluation measures: PSNR, Fréchet distance in a feature space, nearest-neighbour distance, bits.

Feature spaces (our stand-ins for the Inception features of FID, spec B7):

* ``classifier``: the 64-dimensional penultimate layer of a small MLP classifier trained on the training
  split's labels (digits; ``digits-FD``). Its test accuracy is reported beside the FD.
* ``random-conv``: a fixed random-weight conv net (seeded; for photo patches and image folders, which have
  no labels): conv3×3(C→32)–ReLU–conv3×3/2(32→64)–ReLU–conv3×3/2(64→64)–ReLU, then the per-channel mean
  and standard deviation over positions (128 features). PyTorch's default initialisation with
  ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from parsimon.errors import ConfigError
from parsimon.registry import Registry

__all__ = ["FEATURES", "FeatureNet", "bits_per_pixel", "frechet_distance", "nn_distance", "psnr",
           "random_conv_features", "train_classifier"]


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in ``[−1, 1]``, computed on the ``[0, 1]`` scale (peak 1): ``[N]``."""
    mse = ((x.float() - ref.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def bits_per_pixel(nats_per_image: float, image_size: int) -> float:
    """Nats per image → bits per pixel: ``/ ln 2 / (H·W)``. We divide by pixels (H·W), not sub-pixels: the
    paper does not state its normaliser (spec B2) [UNCONFIRMED]."""
    return nats_per_image / math.log(2) / (image_size * image_size)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray) -> float:
    """``||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`` of two feature sets ``[N, D]`` (float64).

    ``Tr((Σ1 Σ2)^{1/2}) = Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})``, a symmetric PSD form computed by eigh.
    """
    a = np.asarray(f1.detach().cpu() if isinstance(f1, torch.Tensor) else f1, dtype=np.float64)
    b = np.asarray(f2.detach().cpu() if isinstance(f2, torch.Tensor) else f2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ConfigError(f"frechet_distance needs two [N, D] sets with N >= 2, got {a.shape} and {b.shape}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    r1 = _sqrtm_psd(s1)
    cross = _sqrtm_psd(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross))


def nn_distance(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Per-sample RMS pixel distance (on the ``[0, 1]`` scale) to the nearest training image: ``[N]``.

    Small values against held-out images' own distances signal memorisation.
    """
    a = samples.flatten(1).float() / 2
    b = train.flatten(1).float() / 2
    d2 = torch.cdist(a, b).pow(2).min(1).values
    return (d2 / a.shape[1]).sqrt()


class FeatureNet(nn.Module):
    """A feature extractor: ``features(x) -> [N, D]``; ``kind`` names it in the metrics."""

    def __init__(self, net: nn.Module, kind: str, accuracy: float | None = None) -> None:
        super().__init__()
        self.net, self.kind, self.accuracy = net, kind, accuracy

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        self.net.eval()
        return torch.cat([self.net(x[i:i + batch].float()) for i in range(0, len(x), batch)])


class _ClassifierBody(nn.Module):
    def __init__(self, d_in: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(d_in, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        return self.body(x)


def train_classifier(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                     *, steps: int = 600, seed: int = 0) -> FeatureNet:
    """The digits classifier of ``digits-FD``: an MLP trained on the training split (Adam, seeded);
    features = its 64-dimensional penultimate layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = _ClassifierBody(int(train[0].numel()), int(labels.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (128,), generator=g)
        x = train[idx] + 0.05 * torch.randn(train[idx].shape, generator=g)
        loss = F.cross_entropy(model.head(model(x)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model.head(model(test)).argmax(1) == test_labels).float().mean())
    return FeatureNet(model, "classifier", accuracy=acc)


class _RandomConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x):
        h = self.convs(x).flatten(2)
        return torch.cat([h.mean(2), h.std(2)], 1)


def random_conv_features(channels: int, seed: int = 0) -> FeatureNet:
    """The fixed random-weight conv net (see the module docstring)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = _RandomConv(channels)
    for p in net.parameters():
        p.requires_grad_(False)
    return FeatureNet(net, f"random-conv(seed={seed})")


def _classifier_features(data, seed: int) -> FeatureNet:
    if data.train_labels is None:
        raise ConfigError(f"`features` classifier needs labels; {data.name} has none (use random-conv)")
    return train_classifier(data.train, data.train_labels, data.test, data.test_labels, seed=seed)


def _random_conv(data, seed: int) -> FeatureNet:
    return random_conv_features(data.channels, seed)


FEATURES: Registry = Registry("features")
FEATURES.register("classifier", _classifier_features, describe="penultimate layer of a digits classifier")
FEATURES.register("random-conv", _random_conv, describe="a fixed random-weight conv net (seeded)")


_CACHE: dict[tuple, FeatureNet] = {}


def feature_net_for(data, kind: str = "auto", seed: int = 0) -> FeatureNet:
    """The feature net named ``kind``; ``auto``: the classifier where the data has labels, else random-conv.

    Kept per process for the same data (name, split sizes and a checksum of the images), so the runs of a
    sweep measure in one feature space.
    """
    if kind == "auto":
        kind = "classifier" if data.train_labels is not None else "random-conv"
    key = (kind, seed, data.name, tuple(data.train.shape), tuple(data.test.shape), float(data.train.double().sum()))
    if key not in _CACHE:
        _CACHE[key] = FEATURES.get(kind)(data, seed)
    return _CACHE[key]
