"""Model tests in the spirit of diffusers': shapes, determinism, gradients, save/load, strictness."""

from __future__ import annotations

import json

import pytest
import torch

from pcavs.checkpoint import (
    CheckpointError,
    export_official,
    load_model,
    load_official,
    load_strict,
    save_weights,
)
from pcavs.config import ConfigError, ModelConfig, from_dict, preset, to_dict
from pcavs.model import PCAVS, generator_chunk, parameter_counts
from pcavs.nn.layers import ModulatedConv2d


def _inputs(cfg: ModelConfig, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    s = cfg.image_size
    ref = torch.rand(1, 3, s, s, generator=g) * 2 - 1
    pose = torch.rand(batch, 3, s, s, generator=g) * 2 - 1
    mel = torch.rand(batch, 1, cfg.audio.n_mels, cfg.audio.window, generator=g)
    return ref, mel, pose


@pytest.fixture(scope="module")
def tiny() -> PCAVS:
    torch.manual_seed(1)
    return PCAVS(preset("tiny"), with_discriminator=True).eval()


def test_official_parameter_counts():
    counts = parameter_counts(PCAVS(preset("official"), with_discriminator=True))
    assert counts == {"G": 89_570_205, "V": 38_023_662, "E": 14_285_643, "A_sync": 10_364_434, "D": 5_527_682}
    g = PCAVS(preset("official")).G
    assert sum(p.numel() for p in g.style.parameters()) == 52_449_280


def test_official_layout_matches_reference(reference_dir):
    layout = json.loads((reference_dir / "state_dict_layout.json").read_text())["networks"]
    model = PCAVS(preset("official"))
    for name, items in layout.items():
        state = getattr(model, name).state_dict()
        ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]
        assert ours == [(k, s, t) for k, s, t in items], name


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_output_shapes(name):
    cfg = preset(name)
    model = PCAVS(cfg, with_discriminator=True).eval()
    ref, mel, pose = _inputs(cfg)
    with torch.no_grad():
        ident = model.encode_identity(ref)
        assert ident.vector.shape == (1, cfg.identity.feature_dim)
        assert ident.map.shape == (1, cfg.identity.map_channels, cfg.generator.init_size, cfg.generator.init_size)
        content = model.encode_audio(mel)
        assert content.shape == (3, cfg.audio.feature_dim)
        nonid = model.E(pose)
        assert nonid.shape == (3, cfg.nonidentity.feature_dim)
        assert model.E.pose_code(nonid).shape == (3, cfg.mapping.pose_dim)
        assert model.E.visual_content(nonid).shape == (3, cfg.nonidentity.feature_dim)
        mouth = model.mouth_style(content)
        assert mouth.shape == (3, cfg.mouth_dim)
        assert model.style(ident, mouth, model.encode_pose(pose)).shape == (3, cfg.style_dim)
        img = model(ref, mel, pose)
        assert img.shape == (3, 3, cfg.image_size, cfg.image_size)
        assert img.abs().max() <= 1
        preds = model.D(img)
        assert len(preds) == cfg.discriminator.num_scales
        assert all(p[-1].shape[1] == 1 for p in preds)


def test_determinism_and_noise_modes(tiny):
    cfg = tiny.cfg
    ref, mel, pose = _inputs(cfg)
    with torch.no_grad():
        for p in tiny.G.modules():  # make noise matter
            if hasattr(p, "noise") and hasattr(p.noise, "weight"):
                p.noise.weight.fill_(0.5)
        a = tiny(ref, mel, pose, noise="const")
        b = tiny(ref, mel, pose, noise="const")
        assert torch.equal(a, b)
        ident = tiny.encode_identity(ref)
        mouth, pose_code = tiny.mouth_style(tiny.encode_audio(mel)), tiny.encode_pose(pose)
        r1 = tiny.generate(ident, mouth, pose_code, noise="random", generator=torch.Generator().manual_seed(3))
        r2 = tiny.generate(ident, mouth, pose_code, noise="random", generator=torch.Generator().manual_seed(3))
        r3 = tiny.generate(ident, mouth, pose_code, noise="random", generator=torch.Generator().manual_seed(4))
        assert torch.equal(r1, r2)
        assert not torch.equal(r1, r3)
        for p in tiny.G.modules():
            if hasattr(p, "noise") and hasattr(p.noise, "weight"):
                p.noise.weight.zero_()


def test_batch_independence(tiny):
    """Each sample's output depends only on its own inputs (the modulation is per sample)."""
    ref, mel, pose = _inputs(tiny.cfg, batch=4)
    with torch.no_grad():
        full = tiny(ref, mel, pose, noise="none")
        one = tiny(ref, mel[2:3], pose[2:3], noise="none")
    torch.testing.assert_close(full[2:3], one, atol=1e-5, rtol=0)


def test_fast_modulated_conv_matches_grouped():
    torch.manual_seed(0)
    for batch in (1, 4):  # one sample modulates the weight, several the activations
        for upsample in (False, True):
            for demod in (True, False):
                conv = ModulatedConv2d(6, 5, 3 if demod else 1, 10, demodulate=demod, upsample=upsample and demod)
                x, s = torch.randn(batch, 6, 7, 7), torch.randn(batch, 10)
                torch.testing.assert_close(conv(x, s), conv.forward_grouped(x, s), atol=1e-5, rtol=1e-5)


def test_fused_styled_conv_and_to_rgb_match_the_plain_formulas():
    from pcavs.nn.generator import StyledConv, ToRGB

    torch.manual_seed(0)
    layer = StyledConv(6, 5, 10, upsample=True, blur_kernel=(1, 3, 3, 1))
    with torch.no_grad():
        layer.noise.weight.fill_(0.7)
        layer.activate.bias.normal_()
    x, s, n = torch.randn(3, 6, 7, 7), torch.randn(3, 10), torch.randn(3, 1, 14, 14)
    plain = layer.activate(layer.noise(layer.conv.forward_grouped(x, s), n))
    torch.testing.assert_close(layer(x, s, lambda _: n), plain, atol=1e-5, rtol=1e-5)
    rgb = ToRGB(5, 10, upsample=True, blur_kernel=(1, 3, 3, 1))
    y, skip = torch.randn(3, 5, 14, 14), torch.randn(3, 3, 7, 7)
    plain = rgb.conv.forward_grouped(y, s) + rgb.bias + rgb.upsample(skip)
    torch.testing.assert_close(rgb(y, s, skip), plain, atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = PCAVS(preset("tiny"), with_discriminator=True).train()
    ref, mel, pose = _inputs(model.cfg, batch=2)
    vec, id_map = model.V(torch.flip(pose, dims=[3]))  # distinct samples: BatchNorm needs variety
    nonid = model.E(pose)
    content_a, content_v = model.encode_audio(mel), model.E.visual_content(nonid)
    pose_code = model.E.pose_code(nonid)
    style = torch.cat([vec, model.E.mouth_style(content_a), pose_code], 1)
    img = model.G(style, id_map, noise="random")
    loss = img.mean() + sum(f.mean() for scale in model.D(img) for f in scale)
    loss = loss + model.V.classify(vec).mean() + model.E.classifier(nonid).mean() + content_v.mean()
    loss = loss + model.A_sync.fc(content_a).mean() + model.E.mouth_fc(content_v).mean()
    loss = loss + model.E.headpose_fc(pose_code).mean()
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert dead == []


def test_safetensors_round_trip(tmp_path, tiny):
    save_weights(tiny, tmp_path / "w")
    loaded = load_model(tmp_path / "w")
    assert loaded.cfg == tiny.cfg
    ref, mel, pose = _inputs(tiny.cfg)
    with torch.no_grad():
        assert torch.equal(tiny(ref, mel, pose, noise="const"), loaded(ref, mel, pose, noise="const"))
    meta = json.loads((tmp_path / "w" / "config.json").read_text())
    assert meta["preset"] == "tiny" and meta["format"] == "pcavs-weights"


def test_official_layout_round_trip(tmp_path, tiny):
    export_official(tiny, tmp_path / "off")
    assert sorted(p.name for p in (tmp_path / "off").iterdir()) == [
        "latest_net_A_sync.pth", "latest_net_E.pth", "latest_net_G.pth", "latest_net_V.pth",
    ]
    state = torch.load(tmp_path / "off" / "latest_net_G.pth", weights_only=True)
    assert "noises.noise_0" in state and not any(k.startswith("module.") for k in state)
    loaded = load_official(tmp_path / "off", cfg=tiny.cfg)
    ref, mel, pose = _inputs(tiny.cfg)
    with torch.no_grad():
        assert torch.equal(tiny(ref, mel, pose, noise="const"), loaded(ref, mel, pose, noise="const"))


def test_strict_loading_names_keys(tmp_path, tiny):
    state = dict(tiny.E.state_dict())
    state.pop("to_mouth.0.weight")
    state["bogus.weight"] = torch.zeros(1)
    state["mouth_embed.1.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_strict(PCAVS(tiny.cfg).E, state, "E", tmp_path / "latest_net_E.pth")
    msg = str(err.value)
    assert "latest_net_E.pth" in msg and "network E" in msg
    assert "missing keys (1): to_mouth.0.weight" in msg
    assert "unexpected keys (1): bogus.weight" in msg
    assert "mouth_embed.1.bias: file (3,)" in msg


def test_incomplete_official_folder(tmp_path, tiny):
    export_official(tiny, tmp_path)
    (tmp_path / "latest_net_V.pth").unlink()
    with pytest.raises(CheckpointError, match="missing latest_net_V.pth"):
        load_official(tmp_path, cfg=tiny.cfg)
    (tmp_path / "latest_net_E.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="weights folder|no weights|missing"):
        load_model(tmp_path / "nowhere")


def test_truncated_safetensors(tmp_path, tiny):
    save_weights(tiny, tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(tmp_path)


def test_config_overrides_and_round_trip():
    cfg = preset("small", ["generator.channels=[64,32,16]", "mouth_weight=1", "mapping.pose_dim=6"])
    assert cfg.generator.channels == (64, 32, 16)
    assert cfg.mouth_weight == 1.0 and isinstance(cfg.mouth_weight, float)
    assert cfg.style_dim == cfg.identity.feature_dim + cfg.nonidentity.feature_dim
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown config key 'generator.chanels'"):
        preset("small", ["generator.chanels=[1]"])
    with pytest.raises(ConfigError, match="image_size"):
        preset("small", ["image_size=96"])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="map_stage"):
        preset("small", ["identity.map_stage=5"])


def test_identity_map_comes_from_the_configured_stage():
    torch.manual_seed(0)
    model = PCAVS(preset("small")).eval()  # map_stage=1: a 16x16 map from layer1 at 64 px
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        vec, fmap = model.V(x)
        model.V.model.layer2[0].conv1.weight.mul_(2)  # after the map's stage: only the vector moves
        vec2, fmap2 = model.V(x)
    assert fmap.shape == (2, 128, 16, 16)
    assert torch.equal(fmap, fmap2) and not torch.equal(vec, vec2)
    assert model.V.conv1x1.in_channels == 32 * 4  # layer1's width x bottleneck expansion
    stage2 = ["identity.map_stage=2", "generator.init_size=8", "generator.channels=[128,128,64,32]"]
    assert PCAVS(preset("small", stage2)).V(x)[1].shape == (2, 128, 8, 8)


def test_fan_head_channels():
    # released: conv6 sums the 68 heatmaps into 1 map; the option keeps C maps of the 8x8 grid at 64 px
    assert PCAVS(preset("official")).E.model.conv6.out_channels == 1
    fan = PCAVS(preset("small", ["nonidentity.head_channels=16"])).E.model
    assert (fan.conv6.out_channels, fan.fc.in_features) == (16, 16 * 8 * 8)
    assert fan(torch.zeros(3, 3, 64, 64)).shape == (3, 256)
    with pytest.raises(ConfigError, match="head_channels"):
        preset("small", ["nonidentity.head_channels=0"])


def test_chunked_generation_matches_one_call():
    torch.manual_seed(0)
    model = PCAVS(preset("tiny")).eval()
    s = model.cfg.image_size
    with torch.no_grad():
        ident = model.encode_identity(torch.rand(1, 3, s, s) * 2 - 1)
        mouth = model.mouth_style(model.encode_audio(torch.rand(5, 1, 80, 20)))
        pose = model.encode_pose(torch.rand(5, 3, s, s) * 2 - 1)
        whole = model.generate(ident, mouth, pose, noise="const")
        for chunk in (1, 2, 5, 8):
            part = model.generate(ident, mouth, pose, noise="const", chunk=chunk)
            assert part.shape == whole.shape
            assert (part - whole).abs().max() < 1e-5, chunk
    assert generator_chunk("cpu", 224) == 1
    assert generator_chunk("cpu", 64) is None and generator_chunk("cuda", 224) is None


def test_encode_pose_fast_path_matches_the_plain_one():
    torch.manual_seed(0)
    model = PCAVS(preset("tiny")).eval()
    frames = torch.rand(11, 3, 32, 32) * 2 - 1  # more than one chunk of 8
    with torch.no_grad():
        plain = model.E.pose_code(model.E(frames))
        fast = model.encode_pose(frames)
    assert fast.shape == plain.shape == (11, model.cfg.mapping.pose_dim)
    assert (fast - plain).abs().max() < 1e-5
