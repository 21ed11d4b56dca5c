"""Tests for pcavs.data.augment."""

from __future__ import annotations

import pytest
import torch

from pcavs.data.augment import (
    AugmentConfig,
    apply_augment,
    augment_nonidentity,
    sample_augment_params,
    solve_homography,
    trapezoid_corners,
    trapezoid_inverse_homography,
    warp_trapezoid_crop,
)


def _frames(b: int = 4, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g) * 2 - 1


def _apply_h(hm: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    homog = torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1) @ hm.transpose(-1, -2)
    return homog[..., :2] / homog[..., 2:]


def _total_variation(t: torch.Tensor) -> torch.Tensor:
    return (t[..., 1:] - t[..., :-1]).abs().mean()


def test_color_permutation_is_a_permutation():
    x = _frames(8)
    cfg = AugmentConfig(p_color=1.0, p_perspective=0.0, p_crop=0.0)
    y = augment_nonidentity(x, torch.Generator().manual_seed(0), cfg)
    assert torch.equal(y.sort(dim=1).values, x.sort(dim=1).values)
    assert not torch.equal(y, x)  # P(all 8 perms identity) = 6^-8


def test_solve_homography_maps_points():
    src = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64)
    dst = torch.tensor([[[-0.5, -0.9], [0.7, -1.0], [1.0, 0.8], [-1.0, 1.0]]], dtype=torch.float64)
    hm = solve_homography(src, dst)
    assert torch.allclose(_apply_h(hm, src), dst, atol=1e-10)
    # The inverse used for sampling takes trapezoid corners back to the frame corners.
    shrink, top = torch.tensor([0.3, 0.2]), torch.tensor([True, False])
    inv = trapezoid_inverse_homography(shrink, top)
    corners = trapezoid_corners(shrink, top)
    assert torch.allclose(_apply_h(inv, corners), src.expand(2, 4, 2), atol=1e-10)
    assert torch.allclose(corners[0, :2, 0], torch.tensor([-0.7, 0.7], dtype=torch.float64))
    assert torch.allclose(corners[1, 2:, 0], torch.tensor([0.8, -0.8], dtype=torch.float64))


def test_trapezoid_warp_of_constant_is_constant_inside():
    x = torch.full((2, 3, 32, 32), 0.3)
    shrink = torch.tensor([0.4, 0.4])
    top = torch.tensor([True, False])
    y = warp_trapezoid_crop(x, shrink, top, torch.ones(2), padding_mode="zeros")
    # Inside the trapezoid (central columns, away from the top/bottom rows, which
    # foreshortening maps to within half a pixel of the frame edge) the value is unchanged.
    inside = y[:, :, 2:-2, 10:22]
    assert torch.allclose(inside, torch.full_like(inside, 0.3), atol=1e-6)
    # The corners beside the short edge fall outside the frame: zero padding shows.
    assert torch.all(y[0, :, 0, 0] == 0) and torch.all(y[1, :, -1, -1] == 0)
    # ...but not beside the long edge.
    assert torch.allclose(y[0, :, -3, 1], torch.full((3,), 0.3), atol=1e-6)
    # With border padding a constant image stays constant everywhere.
    z = warp_trapezoid_crop(x, shrink, top, torch.full((2,), 0.85), padding_mode="border")
    assert torch.allclose(z, x, atol=1e-6)


def test_centred_crop_zooms_in():
    # Value = normalised x coordinate of the pixel centre; a crop of scale c shows [-c, c].
    w = 32
    xs = (torch.arange(w, dtype=torch.float32) * 2 + 1) / w - 1
    x = xs.expand(1, 3, 16, w).clone()
    y = warp_trapezoid_crop(x, torch.zeros(1), torch.tensor([True]), torch.tensor([0.5]))
    assert torch.allclose(y, 0.5 * x, atol=1e-5)


def test_identity_when_strengths_are_zero():
    x = _frames()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment_nonidentity(x, g, AugmentConfig.off()), x)
    cfg = AugmentConfig(p_color=0.0, perspective_max=0.0, crop_scale=(1.0, 1.0))
    assert torch.equal(augment_nonidentity(x, g, cfg), x)
    # The warp itself is (numerically) the identity at zero strength.
    y = warp_trapezoid_crop(x, torch.zeros(4), torch.ones(4, dtype=torch.bool), torch.ones(4))
    assert torch.allclose(y, x, atol=1e-5)


def test_deterministic_given_seed():
    x = _frames()
    cfg = AugmentConfig(p_blur=0.5, p_sharpen=0.5)
    y1 = augment_nonidentity(x, torch.Generator().manual_seed(123), cfg)
    y2 = augment_nonidentity(x, torch.Generator().manual_seed(123), cfg)
    y3 = augment_nonidentity(x, torch.Generator().manual_seed(124), cfg)
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, y3)


def test_random_stream_independent_of_config():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    augment_nonidentity(_frames(), g1, AugmentConfig.off())
    augment_nonidentity(_frames(), g2, AugmentConfig(p_blur=1.0))
    assert torch.equal(g1.get_state(), g2.get_state())


def test_shapes_dtype_and_range_preserved():
    x = _frames(3, 24, 40)
    for cfg in (
        AugmentConfig(),
        AugmentConfig(p_blur=1.0),
        AugmentConfig(p_sharpen=1.0, sharpen_amount=(2.0, 3.0)),
    ):
        y = augment_nonidentity(x, torch.Generator().manual_seed(0), cfg)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.min() >= -1.0 and y.max() <= 1.0
    x64 = x.double()
    assert augment_nonidentity(x64, torch.Generator().manual_seed(0)).dtype == torch.float64


def test_blur_and_sharpen_keep_constants_and_change_texture():
    const = torch.full((2, 3, 16, 16), -0.2)
    x = _frames(2, 16, 16)
    blur_cfg = AugmentConfig(p_color=0, p_perspective=0, p_crop=0, p_blur=1.0)
    sharpen_cfg = AugmentConfig(p_color=0, p_perspective=0, p_crop=0, p_sharpen=1.0)
    for cfg in (blur_cfg, sharpen_cfg):
        assert torch.allclose(
            augment_nonidentity(const, torch.Generator().manual_seed(0), cfg), const, atol=1e-6
        )
        y = augment_nonidentity(x, torch.Generator().manual_seed(0), cfg)
        assert not torch.allclose(y, x)
    # Blur lowers the total variation of noise.
    blurred = augment_nonidentity(x, torch.Generator().manual_seed(0), blur_cfg)
    assert _total_variation(blurred) < _total_variation(x)


def test_params_ranges():
    cfg = AugmentConfig(perspective_max=0.3, crop_scale=(0.8, 0.9))
    p = sample_augment_params(64, torch.Generator().manual_seed(0), cfg)
    assert ((p.shrink >= 0) & (p.shrink <= 0.3)).all()
    assert ((p.crop >= 0.8) & (p.crop <= 0.9)).all()
    assert p.shrink_top.any() and (~p.shrink_top).any()  # both trapezoid directions occur
    assert torch.equal(p.perm.sort(dim=1).values, torch.arange(3).expand(64, 3))
    y = apply_augment(_frames(64, 8, 8), p, cfg)
    assert y.shape == (64, 3, 8, 8)


def test_invalid_inputs():
    with pytest.raises(ValueError):
        AugmentConfig(p_color=1.5)
    with pytest.raises(ValueError):
        AugmentConfig(crop_scale=(0.9, 0.8))
    with pytest.raises(ValueError):
        augment_nonidentity(torch.zeros(2, 1, 8, 8), torch.Generator())
