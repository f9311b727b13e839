#!/usr/bin/env bash
# Stage the working tree for a device call, and put it back afterwards.
#
# The device tool sends at most 64 MiB; experiments/results/*/ holds about 90 MB of
# committed summaries and checkpoints. `stage` moves those folders to $ASIDE and copies
# back only what the GPU jobs read (the full-data training state; the other jobs start from
# rows files, which stay), and fills data/ with Fashion-MNIST and .whl/ with nas-bench-201's
# wheel (carry both: `carry: ["data", ".whl"]`). `restore` brings the folders back without
# overwriting what the device's pack added (unpack the pack first). Stop the CPU's own runs
# first: their run folders move too.
#
#   bash experiments/gpu_stage.sh stage     # before the call
#   tar xzf /work/.device/N/pack.tar.gz     # after it
#   bash experiments/gpu_stage.sh restore
set -eu
ASIDE=${ASIDE:-/tmp/datadistill_results_aside}
R=experiments/results
KEEP=(full_data_state)  # what experiments/gpu_next.sh resumes from (in experiments/results)

case "${1:-}" in
stage)
    [ -e "$ASIDE" ] && { echo "$ASIDE exists: restore first" >&2; exit 1; }
    mkdir -p "$ASIDE" data .whl
    mv "$R"/*/ "$ASIDE"/
    for f in "${KEEP[@]+"${KEEP[@]}"}"; do
        [ -e "$ASIDE/$f" ] && mkdir -p "$R/$(dirname "$f")" && cp -r "$ASIDE/$f" "$R/$f"
    done
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
