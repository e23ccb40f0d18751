#!/usr/bin/env bash
# Builds models/kjv-llama-tiny/ from scratch on a Debian bookworm machine (CPU only).
#
#   tools/train-demo-model/run.sh            # everything: apt, corpus, tokenizer, training, export, checks
#   SKIP_APT=1 tools/train-demo-model/run.sh # packages already installed
#   STEPS=1200 (default)                     # training steps
#   WORK=dir MODEL=dir                       # other work / output folders (e.g. for a quick test)
#
# Needs: root (or sudo) for apt-get, Node.js >= 18 and the repo's node_modules (`npm ci` at the
# repo root; the tokenizer is trained with @anush008/tokenizers, the Rust HF tokenizers binding).
# Intermediate files go to tools/train-demo-model/work/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-$HERE/work}"
MODEL="${MODEL:-$ROOT/models/kjv-llama-tiny}"
PY=/usr/bin/python3          # Debian's python3 (python3-torch is installed for it), not a pyenv/venv one
STEPS="${STEPS:-1200}"

t_start=$(date +%s)
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

if [ -z "${SKIP_APT:-}" ]; then
  stamp "apt: bible-kjv (text + reader), torch 1.13 (CPU), numpy, OpenBLAS"
  apt-get update
  # libopenblas0-openmp matters: Debian's torch links the generic reference BLAS by default
  # (~4 GFLOP/s here); the OpenBLAS alternative makes matrix products ~15x faster.
  apt-get install -y bible-kjv bible-kjv-text python3-torch python3-numpy libopenblas0-openmp
fi
cd "$HERE"   # the .mjs scripts find @anush008/tokenizers in $ROOT/node_modules
node -e "require('@anush008/tokenizers')" || { echo "run 'npm ci' at the repo root first"; exit 1; }
mkdir -p "$WORK/train"
stamp "corpus";    $PY prepare_corpus.py "$WORK/corpus"
stamp "tokenizer"; node train_tokenizer.mjs "$WORK/corpus/train.txt" "$WORK/tokenizer.json" 4096 2>&1 | grep -v '^\s*$' || true
stamp "encode";    node encode_corpus.mjs "$WORK/corpus" "$WORK/tokenizer.json" "$WORK/data"
stamp "train ($STEPS steps)"
$PY train.py "$WORK/data" "$WORK/train" --steps "$STEPS" | tee "$WORK/train/stdout.log"
stamp "export + eval + samples"
$PY export.py "$WORK/train" "$WORK/data" "$WORK/tokenizer.json" "$MODEL" | tee "$WORK/train/export.log"
cp "$WORK/train/train_log.tsv" "$MODEL/eval/train_log.tsv"
stamp "tokenizer check (Rust, Node binding)"
node verify_tokenizer.mjs "$MODEL" "$WORK/data" "$WORK/train/samples.json"
stamp "done in $(( $(date +%s) - t_start )) s"
