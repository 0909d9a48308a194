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
    with pytest.raises(ValueError, match="the smallest, small_cnn"):
        backbone_within(sizes["small_cnn"] - 1, 10, "efficientnet_lite0")
