#!/usr/bin/env bash
# The ResNet-20 / CIFAR-10 comparison (docs/results/resnet20-cifar10): about a day of QAT, so it is resumable:
# rerun this script after an interruption (finished rows are kept, a QAT row continues from its last epoch).
# The PTQ rows run first in one process on 2 threads (their latencies measured with nothing else running); the
# QAT rows then run in 2 jobs of 1 thread (--jobs): the rows with issue 5's targets first, then the others by
# length (3 epochs, 10 for 2 bits or less, 20 for binary activations), so the table fills early. Fixed point is
# trained from scratch (Gupta et al.) for 30 epochs, as long as the float model's last training run (a warm restart
# from trained weights), not the default 5: a 5-epoch ResNet-20 would measure the short schedule, not the datatype.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--model zoo:resnet20-cifar10 --dataset cifar10 --out docs/results/resnet20-cifar10 --seed 0 --resume)
node dist/src/cli/main.js compare "${common[@]}" --specs fp32,int8,int8:per-channel,dfp:8,minifloat:e4m3 > /dev/null
node dist/src/cli/main.js compare "${common[@]}" --jobs 2 --threads 2 \
  --specs fp32,int8,int8:per-channel,dfp:8,minifloat:e4m3,twn,ttq,binary,bwn,int4,pow2:4,log2:4,inq:5,kmeans:16,fixed:16.8:stochastic,dorefa:w2a2,binary:stochastic,dorefa:w1a2,bnn,xnor \
  --scratch-epochs 30 --mixed 0.25,0.125 --sensitivity int4
