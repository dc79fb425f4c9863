#!/usr/bin/env bash
# Train the committed zoo weights (models/*.lowbit) with their exact commands; each run's log goes to
# docs/results/<name>/train.log. Resumable: rerun the script after an interruption (--resume continues
# each unfinished run from its last epoch checkpoint; finished models are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
  local name=$1; shift
  if [ -f "models/$name.lowbit" ]; then echo "models/$name.lowbit exists, skipping"; return; fi
  mkdir -p "docs/results/$name"
  echo "== $name: lowbit $*" | tee -a "docs/results/$name/train.log"
  /usr/bin/time -f "wall %e s" node dist/src/cli/main.js "$@" --out "models/$name.lowbit" --resume 2>&1 \
    | stdbuf -oL tr '\r' '\n' | grep --line-buffered -v '^epoch [0-9]*/[0-9]* \[' | tee -a "docs/results/$name/train.log"
}
run lenet5-mnist train --model lenet5 --dataset mnist --epochs 15 --seed 1
run lenet5-fashion train --model lenet5 --dataset fashion-mnist --epochs 15 --seed 1
run resnet20-cifar10 train --model resnet20 --dataset cifar10 --epochs 40 --seed 1
