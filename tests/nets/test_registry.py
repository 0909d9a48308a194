import pytest
import torch

from autoclint.nets import create_model, list_models
from autoclint.nets.resnet import ResNet18Features, find_resnet18_weights, resnet18


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_chans,video", [(1, False), (3, False), (4, False), (1, True)])
def test_forward_backward(name, in_chans, video):
    net = create_model(name, num_classes=5, in_chans=in_chans, video=video)
    x = torch.rand(2, 3, in_chans, 32, 40) if video else torch.rand(2, in_chans, 32, 40)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert net.head.weight.grad is not None


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("video", [False, True])
def test_the_head_reads_earlier_stages_pooled_before_the_final_features(name, video):
    """levels=k: the head's input is k pooled stage maps, the final features of levels=1 (with the video
    head's temporal conv) as its last columns, each earlier stage its own columns; more levels than the
    backbone has give all of them."""
    torch.manual_seed(0)
    one = create_model(name, num_classes=5, in_chans=3, video=video).eval()
    four = create_model(name, num_classes=5, in_chans=3, video=video, levels=4).eval()
    four.backbone.load_state_dict(one.backbone.state_dict())
    if video:
        torch.nn.init.normal_(one.temporal.weight, std=0.01)  # not the identity it starts as
        four.temporal.load_state_dict(one.temporal.state_dict())
    x = torch.rand(2, 3, 3, 64, 64) if video else torch.rand(2, 3, 64, 64)
    widths = one.net_cfg.level_widths
    assert widths[-1] == one.net_cfg.num_features == one.num_features and len(widths) >= 4
    with torch.no_grad():
        final, described = one.forward_features(x), four.forward_features(x)
        assert described.shape == (2, sum(widths[-4:])) == (2, four.num_features) == (2, four.head.in_features)
        torch.testing.assert_close(described[:, -widths[-1]:], final, rtol=1e-5, atol=1e-5)
        assert four(x).shape == (2, 5)
        assert not torch.allclose(described[:, :widths[-4]], described[:, widths[-4]:2 * widths[-4]])
        assert create_model(name, 5, 3, video=video, levels=99).forward_features(x).shape == (2, sum(widths))


def test_unknown_backbone_lists_known():
    known = "efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, resnet18, small_cnn"
    with pytest.raises(ValueError, match=f"unknown backbone 'vgg'; known: {known}"):
        create_model("vgg", 3)


def test_lite0_is_pretrained_offline():
    assert create_model("efficientnet_lite0", 3).net_cfg.pretrained


def test_grey_stem_is_the_sum_of_rgb_weights():
    rgb = create_model("efficientnet_lite0", 3).backbone.net.conv_stem.weight
    grey = create_model("efficientnet_lite0", 3, in_chans=1).backbone.net.conv_stem.weight
    assert torch.allclose(grey, rgb.sum(1, keepdim=True))


def test_resnet18_loads_a_torchvision_format_state_dict(tmp_path):
    """A state dict saved with torchvision's key names (incl. fc) loads, fc dropped; the checksum is checked."""
    reference = ResNet18Features()
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet18-f37072fd.pth")
    assert find_resnet18_weights(str(tmp_path)) == str(tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(ValueError, match="does not match f37072fd; re-download it"):
        resnet18(weights_dir=str(tmp_path))
    import autoclint.nets.resnet as resnet_module
    resnet_module.RESNET18_FILES["resnet18-f37072fd.pth"] = None  # skip the checksum for this saved file
    try:
        net, cfg = resnet18(weights_dir=str(tmp_path))
    finally:
        resnet_module.RESNET18_FILES["resnet18-f37072fd.pth"] = "f37072fd"
    assert cfg.pretrained and torch.equal(net.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_resnet18_without_weights_warns(tmp_path, caplog):
    net, cfg = resnet18(weights_dir=str(tmp_path))
    assert not cfg.pretrained and "RANDOM INIT" in caplog.text


def test_max_params_keeps_the_preferred_network_when_it_fits_and_names_the_smallest_when_none_does():
    from autoclint.nets.registry import backbone_within, model_info
    sizes = {i.name: i.backbone_params + i.num_features * 10 + 10 for i in model_info()}
    assert backbone_within(sizes["resnet18"], 10, "resnet18") == "resnet18"
    assert backbone_within(sizes["resnet18"] - 1, 10, "resnet18") == "efficientnet_lite2"  # the largest pretrained
    assert backbone_within(sizes["efficientnet_lite1"], 10, "resnet18") == "efficientnet_lite1"
    assert backbone_within(sizes["efficientnet_lite0"], 10, "efficientnet_lite0") == "efficientnet_lite0"
    assert backbone_within(sizes["efficientnet_lite0"] - 1, 10, "efficientnet_lite0") == "small_cnn"
    assert sizes["small_cnn"] < 2_000_000  # what `--max-params 2e6` leaves
    for levels in (1, 4):  # the counts are the networks' own, the head on `levels` stages included
        for info in model_info(levels=levels):
            net = create_model(info.name, 10, levels=levels, pretrained=False)
            assert sum(p.numel() for p in net.parameters()) == info.backbone_params + info.num_features * 10 + 10
    with pytest.raises(ValueError, match="the smallest, small_cnn"):
        backbone_within(sizes["small_cnn"] - 1, 10, "efficientnet_lite0")
