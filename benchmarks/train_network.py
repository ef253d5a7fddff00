"""Train the ``learned`` method's network and write it as ONNX into the package.

Usage (needs PyTorch and onnx, which fovflow itself does not: ``pip install torch==2.13.0
onnx``)::

    .venv/bin/python benchmarks/train_network.py DATA_DIR [--sets 1-15] [--steps 5000]
        [--out src/fovflow/processing/networks/phase_mammalian.onnx]

The network (`UNet`: 4 levels of two 3x3 convolutions, batch norm and ReLU, 16 to 128
channels) learns from Usiigaci's *tune* sets (``benchmarks/real_data.py``; the shipped network from
sets 1-15, sets 16-20 kept to choose the method's defaults by, never the held-out sets 21-45)
two maps per pixel: whether it belongs to a cell, and its distance to the cell's edge
over the cell's largest such distance (`targets`). Each frame is seen as
`fovflow.processing.learned` will show it: `normalised`, scaled so that its cells' median
area-equivalent diameter is `WORKING_DIAMETER`, and also 0.75-1.33 times that so that an
estimated diameter may be off. Patches of 128 px are cut at random, turned, mirrored, and their
contrast, offset, sharpness and noise varied. The batches and the first weights are seeded;
the network itself may differ in its last digits between machines (PyTorch's CPU kernels).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from fovflow.processing.learned import NETWORK_DEPTH, WORKING_DIAMETER, normalised
from real_data import load_usiigaci

SCALE_JITTER = (0.75, 0.87, 1.0, 1.15, 1.33)
PATCH = 128
BATCH = 6
CENTRE_WEIGHT = 5.0  # the centre map's squared error against the cell map's cross-entropy
DEFAULT_OUT = (Path(__file__).resolve().parents[1] / "src" / "fovflow" / "processing"
               / "networks" / "phase_mammalian.onnx")


class Block(torch.nn.Sequential):
    """Two 3x3 convolutions, each with batch norm and ReLU."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__(
            torch.nn.Conv2d(inputs, outputs, 3, padding=1), torch.nn.BatchNorm2d(outputs),
            torch.nn.ReLU(inplace=True), torch.nn.Conv2d(outputs, outputs, 3, padding=1),
            torch.nn.BatchNorm2d(outputs), torch.nn.ReLU(inplace=True))


class UNet(torch.nn.Module):
    """A U-Net of `NETWORK_DEPTH` levels from `base` channels, giving the cell and centre logits."""

    def __init__(self, base: int = 16) -> None:
        super().__init__()
        widths = [base * 2**level for level in range(NETWORK_DEPTH)]
        upward = range(NETWORK_DEPTH - 1, 0, -1)
        self.down = torch.nn.ModuleList(
            Block(widths[level - 1] if level else 1, widths[level])
            for level in range(NETWORK_DEPTH))
        self.up = torch.nn.ModuleList(
            torch.nn.ConvTranspose2d(widths[level], widths[level - 1], 2, stride=2)
            for level in upward)
        self.merge = torch.nn.ModuleList(
            Block(2 * widths[level - 1], widths[level - 1]) for level in upward)
        self.head = torch.nn.Conv2d(base, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(torch.nn.functional.max_pool2d(x, 2) if level else x)
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)


def targets(labels: NDArray[np.int32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The cell map (0/1) and the centre map: each cell pixel's distance to the cell's edge (its
    pixels beside another cell or the background) over the cell's largest."""
    top = ndimage.maximum_filter(labels, 3)
    bottom = ndimage.minimum_filter(np.where(labels > 0, labels, labels.max() + 1), 3)
    inner = (labels > 0) & (top == labels) & (bottom == labels)
    distance = ndimage.distance_transform_edt(inner).astype(np.float32)
    largest = np.asarray(ndimage.maximum(distance, labels, np.arange(labels.max() + 1)),
                         np.float32)
    largest[largest == 0] = 1.0
    return (labels > 0).astype(np.float32), distance / largest[labels]


def training_frames(data_dir: Path, sets: range) -> list[tuple[NDArray[np.float32], ...]]:
    """(image, cell map, centre map) of every set at every scale of `SCALE_JITTER`."""
    recording = load_usiigaci(data_dir, "tune", None)
    frames = []
    for number, fov in zip(range(1, 21), recording.fovs, strict=True):
        if number not in sets:
            continue
        labels = fov.truth[0].astype(np.int32)
        _, areas = np.unique(labels[labels > 0], return_counts=True)
        diameter = float(np.median(2 * np.sqrt(areas / np.pi)))
        image = normalised(fov.images[0])
        for jitter in SCALE_JITTER:
            scale = WORKING_DIAMETER / diameter * jitter
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            scaled_labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
            frames.append((scaled, *targets(scaled_labels)))
    return frames


def batch(frames: list[tuple[NDArray[np.float32], ...]], rng: np.random.Generator
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`BATCH` random patches, varied, as (images, cell maps, centre maps)."""
    images, cells, centres = [], [], []
    for _ in range(BATCH):
        image, cell, centre = frames[rng.integers(len(frames))]
        top = rng.integers(image.shape[0] - PATCH + 1)
        left = rng.integers(image.shape[1] - PATCH + 1)
        turns, mirror = rng.integers(4), rng.random() < 0.5
        patch = []
        for array in (image, cell, centre):
            piece = np.rot90(array[top:top + PATCH, left:left + PATCH], turns)
            patch.append(np.ascontiguousarray(piece[:, ::-1] if mirror else piece))
        varied = patch[0] * rng.uniform(0.7, 1.4) + rng.uniform(-0.3, 0.3)
        if rng.random() < 0.3:
            varied = cv2.GaussianBlur(varied, (0, 0), rng.uniform(0.3, 1.2))
        images.append(varied + rng.normal(0.0, rng.uniform(0.0, 0.15), varied.shape))
        cells.append(patch[1])
        centres.append(patch[2])
    return tuple(torch.from_numpy(np.stack(arrays).astype(np.float32))  # type: ignore[return-value]
                 for arrays in (np.stack(images)[:, None], cells, centres))


def train(frames: list[tuple[NDArray[np.float32], ...]], steps: int, seed: int) -> UNet:
    """The network after `steps` batches (AdamW, one-cycle learning rate up to 3e-3)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = UNet()
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    for step in range(steps):
        images, cells, centres = batch(frames, rng)
        logits = network(images)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], cells)
                + CENTRE_WEIGHT * torch.nn.functional.mse_loss(torch.sigmoid(logits[:, 1]),
                                                              centres))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - start:6.0f} s",
                  flush=True)
    return network.eval()


def export(network: UNet, path: Path) -> None:
    """Write `network` as ONNX with free height and width (batch norm folded in by the export
    of a network in eval mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 1, 64, 64)
    torch.onnx.export(network, (example,), str(path), input_names=["image"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"image": {2: "height", 3: "width"},
                                    "logits": {2: "height", 3: "width"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--sets", default="1-15", help="Usiigaci tune sets, FIRST-LAST")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    first, last = (int(part) for part in args.sets.split("-"))
    if not 1 <= first <= last <= 20:
        parser.error("--sets must lie within the tune sets 1-20")
    torch.set_num_threads(args.threads)
    frames = training_frames(args.data_dir, range(first, last + 1))
    print(f"{len(frames)} scaled frames of sets {first}-{last}", flush=True)
    export(train(frames, args.steps, args.seed), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
