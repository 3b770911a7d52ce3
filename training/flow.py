"""Optical flow in plain torch ops (TorchScript-able, no weights): pyramidal Lucas-Kanade.

The endpoint runs only what the artifact holds, so the motion cue cannot call OpenCV. Lucas-Kanade
(Lucas & Kanade 1981; coarse-to-fine as in Bouguet's pyramidal implementation) needs nothing but
pooling, 3 x 3 convolutions, a box filter and `grid_sample`: per pixel it solves the 2 x 2 normal
equations of the brightness-constancy error over a `window` x `window` neighbourhood, iterating with the
second frame warped by the current estimate, from the coarsest level of an average-pooled pyramid
(where a displacement of 2^(levels - 1) pixels is one pixel) down to full resolution. The normal
equations are regularised (`ridge`), so a flat, textureless region gets (near) zero flow instead of
noise: what the anomaly score needs is the speed of textured things (people, bikes, carts), not a
dense field.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

RIDGE = 1e-4  # added to the structure tensor's diagonal (intensities in 0..1; a textured patch is ~1e-3)


def _gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel gradients / 8 (d intensity / d pixel) of N x 1 x H x W, zero at the outermost pixels."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=image.dtype,
                      device=image.device).div(8.0).view(1, 1, 3, 3)
    both = F.conv2d(image, torch.cat([kx, kx.transpose(2, 3)]), padding=1)
    both = F.pad(both[:, :, 1:-1, 1:-1], (1, 1, 1, 1))  # zero-padding gives false edges at the border
    return both[:, 0:1], both[:, 1:2]


def _box(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a `window` x `window` neighbourhood (odd window), same size, over the pixels inside the
    image; separable."""
    r = window // 2
    x = F.avg_pool2d(x, kernel_size=(1, window), stride=1, padding=(0, r), count_include_pad=False)
    return F.avg_pool2d(x, kernel_size=(window, 1), stride=1, padding=(r, 0), count_include_pad=False)


def _warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """`image` sampled at x + flow(x) (bilinear, border-clamped); flow N x 2 x H x W in pixels (dx, dy)."""
    n, _, h, w = image.shape
    ys = torch.arange(h, dtype=image.dtype, device=image.device).view(1, h, 1).expand(n, h, w)
    xs = torch.arange(w, dtype=image.dtype, device=image.device).view(1, 1, w).expand(n, h, w)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def lucas_kanade(
    first: torch.Tensor, second: torch.Tensor, levels: int = 4, iterations: int = 3, window: int = 7,
    ridge: float = RIDGE,
) -> torch.Tensor:
    """Flow N x 2 x H x W (dx, dy in pixels) such that second(x + flow(x)) ~ first(x), from greyscale
    N x 1 x H x W frames in 0..1. H and W must be divisible by 2^(levels - 1)."""
    firsts = [first]
    seconds = [second]
    for _ in range(levels - 1):
        firsts.append(F.avg_pool2d(firsts[-1], 2))
        seconds.append(F.avg_pool2d(seconds[-1], 2))
    coarsest = firsts[-1]
    flow = torch.zeros(coarsest.shape[0], 2, coarsest.shape[2], coarsest.shape[3], dtype=first.dtype,
                       device=first.device)
    for level in range(levels - 1, -1, -1):
        a, b = firsts[level], seconds[level]
        if flow.shape[2] != a.shape[2] or flow.shape[3] != a.shape[3]:
            flow = F.interpolate(flow, size=(a.shape[2], a.shape[3]), mode="bilinear", align_corners=False) * 2.0
        gx, gy = _gradients(a)
        sxx = _box(gx * gx, window) + ridge
        sxy = _box(gx * gy, window)
        syy = _box(gy * gy, window) + ridge
        det = sxx * syy - sxy * sxy
        for _ in range(iterations):
            dt = _warp(b, flow) - a
            bx = _box(gx * dt, window)
            by = _box(gy * dt, window)
            du = (syy * bx - sxy * by) / det
            dv = (sxx * by - sxy * bx) / det
            flow = flow - torch.cat([du, dv], dim=1)
    return flow


def high_pass(image: torch.Tensor, window: int) -> torch.Tensor:
    """The image minus its local mean over `window` x `window`: brightness constancy, which Lucas-Kanade
    assumes, fails under a passing shadow or a camera's exposure change; their slow, smooth change of
    brightness is what this removes (DIS normalises its patches' means for the same reason)."""
    return image - _box(image, window)


def cell_speed(flow: torch.Tensor, cell: int) -> torch.Tensor:
    """Mean flow magnitude per `cell` x `cell` cell: N x 2 x H x W -> N x (H / cell) x (W / cell)."""
    return F.avg_pool2d(flow.pow(2).sum(dim=1, keepdim=True).sqrt(), kernel_size=cell, stride=cell).squeeze(1)
