#!/usr/bin/env bash
# Train the committed zoo weights (models/*.lowbit) with their exact commands; each run's log goes to
# docs/results/<name>/train.log. Resumable: rerun the script after an interruption (--resume continues
# each unfinished run from its last epoch checkpoint; finished models are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
# run <model name> <log file under docs/results/> <lowbit arguments>
run() {
  local name=$1 log=docs/results/$2; shift 2
  if [ -f "models/$name.lowbit" ]; then echo "models/$name.lowbit exists, skipping"; return; fi
  mkdir -p "$(dirname "$log")"
  echo "== $name: lowbit $*" | tee -a "$log"
  /usr/bin/time -f "wall %e s" node dist/src/cli/main.js "$@" --out "models/$name.lowbit" --resume 2>&1 \
    | stdbuf -oL tr '\r' '\n' | grep --line-buffered -v '^epoch [0-9]*/[0-9]* \[' | tee -a "$log"
}
run lenet5-mnist lenet5-mnist/train.log train --model lenet5 --dataset mnist --epochs 15 --seed 1
run lenet5-fashion lenet5-fashion/train.log train --model lenet5 --dataset fashion-mnist --epochs 15 --seed 1
# ResNet-20: a 40-epoch cosine cycle, then a warm restart from its weights (30 epochs, lr 0.05: SGDR)
if [ ! -f models/resnet20-cifar10.lowbit ]; then
  run resnet20-cifar10-cycle1 resnet20-cifar10/train.log train --model resnet20 --dataset cifar10 --epochs 40 --seed 1
fi
run resnet20-cifar10 resnet20-cifar10/train-restart.log train --model resnet20 --dataset cifar10 --init models/resnet20-cifar10-cycle1.lowbit \
  --epochs 30 --lr 0.05 --warmup 1 --seed 2
