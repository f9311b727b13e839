#!/usr/bin/env bash
# Stage the working tree for a device call, and put it back afterwards.
#
# The device tool sends at most 64 MiB; experiments/results/*/ holds about 87 MB of
# committed summaries and checkpoints. `stage` moves those folders to $ASIDE and copies
# back only what the GPU jobs read (the summaries the NAS proxies train on, the folders the
# cells resume from, the IPC-10 summaries transfer_fmnist.py trains), fills data/ with Fashion-MNIST and .whl/ with nas-bench-201's wheel
# (carry both: `carry: ["data", ".whl", "generators"]`). `restore` brings the folders
# back without overwriting what the device's pack added (unpack the pack first).
#
#   bash experiments/gpu_stage.sh stage     # before the call
#   tar xzf /work/.device/N/pack.tar.gz     # after it
#   bash experiments/gpu_stage.sh restore
set -eu
ASIDE=${ASIDE:-/tmp/datadistill_results_aside}
R=experiments/results
KEEP=(  # what experiments/gpu_next.sh reads
    engine_fmnist/dm-fashion-mnist-ipc10-s0/summary.safetensors
    engine_fmnist/dm-fashion-mnist-ipc50-s0/summary.safetensors
    gradient_fmnist/dsa-fashion-mnist-ipc10-s0/summary.safetensors
    gradient_fmnist/dsa-fashion-mnist-ipc50-s0/summary.safetensors
    trajectory_fmnist/mtt-fashion-mnist-ipc10-s0/summary.safetensors
    factorised_fmnist/linba-fashion-mnist-ipc10-s0/checkpoint.safetensors
    factorised_fmnist/linba-fashion-mnist-ipc10-s0/metrics.jsonl
)

case "${1:-}" in
stage)
    [ -e "$ASIDE" ] && { echo "$ASIDE exists: restore first" >&2; exit 1; }
    mkdir -p "$ASIDE" data .whl
    mv "$R"/*/ "$ASIDE"/
    for f in "${KEEP[@]}"; do
        mkdir -p "$R/$(dirname "$f")" && cp "$ASIDE/$f" "$R/$f"
    done
    # experiments/transfer_fmnist.py: the IPC-10 summaries (under 3 MB: about 10 MB in all)
    (cd "$ASIDE" && find . -path '*-fashion-mnist-ipc10-s0/summary.safetensors' -size -3M) |
        while read -r f; do mkdir -p "$R/$(dirname "$f")" && cp "$ASIDE/$f" "$R/$f"; done
    cp -n /usr/share/datasets/fashion-mnist/*.gz data/
    ls .whl/nas_bench_201-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps \
        --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
        nas-bench-201==2.1
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >>.git/info/exclude
    du -sh data .whl "$R"
    ;;
restore)
    for d in "$ASIDE"/*/; do
        mkdir -p "$R/$(basename "$d")"
        cp -rn "$d". "$R/$(basename "$d")/"
    done
    rm -rf "$ASIDE"
    git status --short | head -20
    ;;
*)
    echo "usage: $0 stage|restore" >&2
    exit 2
    ;;
esac
