"""The real ImageNet weights of every registry backbone, loaded into our network code."""

import math

import pytest
import torch

from model.backbones import build_backbone
from model.image_encoder import preprocess
from model.samples import sample_photos

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "size"), [("efficientnet-lite0", 224), ("efficientnet-lite2", 260)]
)
def test_registry_weights_see_a_cat_and_an_espresso(name: str, size: int) -> None:
    net = build_backbone(name, "registry", None)
    photos = sample_photos()
    pixels = preprocess([photos["chelsea"], photos["coffee"]], size, net.mean, net.std)
    with torch.inference_mode():
        probs = net.classify(pixels).softmax(-1)
        grid = net(pixels).shape[1]
    assert int(probs[0].argmax()) in range(281, 286) and float(probs[0, 281:286].sum()) > 0.5
    assert int(probs[1].argmax()) == 967  # espresso
    assert grid == math.ceil(size / 32) ** 2  # the patch grid
