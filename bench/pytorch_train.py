"""PyTorch (CPU) peer of `lowbit bench train`: training images/s of LeNet-5 and ResNet-20 as lowbit's zoo
builds them (src/zoo/models.ts), one step = forward + cross-entropy + backward + SGD (Nesterov momentum 0.9,
weight decay 5e-4, as `lowbit train`) + the loss read back. Random standard-normal images, random labels.

Run with the system python3 and Debian's python3-torch (with libopenblas0-openmp: otherwise the reference BLAS):
  /usr/bin/python3 bench/pytorch_train.py --model lenet5 --batch 64 --threads 2 --warmup 2 --runs 10
Prints one JSON object: images_per_s, ms (median step), steps, loss, torch version.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """conv5x5(6, pad 2)-ReLU-maxpool2-conv5x5(16)-ReLU-maxpool2-fc120-ReLU-fc84-ReLU-fc10, biases everywhere."""

    def __init__(self, in_ch=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv + BN where the shape changes: option B), ReLU."""

    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.shortcut = None
        if stride != 1 or in_c != out_c:
            self.shortcut = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c))

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet20(nn.Module):
    """conv3x3(16)-BN-ReLU, 3 stages x 3 blocks (16, 32, 64), global average pool, fc."""

    def __init__(self, in_ch=3, classes=10, w=16):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        blocks, in_c = [], w
        for stage in range(3):
            out_c = w * 2 ** stage
            for b in range(3):
                blocks.append(BasicBlock(in_c, out_c, 2 if stage > 0 and b == 0 else 1))
                in_c = out_c
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_c, classes)

    def forward(self, x):
        h = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


MODELS = {
    "lenet5": (LeNet5, (1, 28, 28), 0.05),
    "resnet20": (ResNet20, (3, 32, 32), 0.1),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--warmup-seconds", type=float, default=0.0, help="untimed steps for at least this long (as lowbit's)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seconds", type=float, default=None, help="time more steps until this many seconds have passed")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    build, shape, lr = MODELS[a.model]
    model = build()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(a.batch, *shape)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    warm_start, warm_steps = time.perf_counter(), 0
    while warm_steps < a.warmup or time.perf_counter() - warm_start < a.warmup_seconds:
        step()
        warm_steps += 1
    times, losses, start = [], [], time.perf_counter()
    while len(times) < max(1, a.runs) or (a.seconds is not None and time.perf_counter() - start < a.seconds):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    ms = 1000 * statistics.median(times)
    print(json.dumps({
        "images_per_s": 1000 * a.batch / ms, "ms": ms, "steps": len(times), "loss": statistics.mean(losses),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
