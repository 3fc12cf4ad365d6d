# Issue 4 evidence: self-supervised CC vs the pose-supervised baseline, same budget, per category.
# bash benchmarks/issue4_runs.sh DATA_DIR RUNS_DIR "TRAIN FLAGS" CATEGORY...
set -uo pipefail
data=$1; runs=$2; flags=$3; shift 3
mkdir -p "$runs"
for cat in "$@"; do
  for sup in self pose; do
    python3 -m ssl3d train "$data" --category "$cat" --out "$runs/$cat-$sup" --supervision "$sup" \
      --device cuda --no-progress $flags > "$runs/$cat-$sup.train.txt" 2>&1 &
  done
done
wait
for cat in "$@"; do
  for sup in self pose; do
    python3 -m ssl3d evaluate "$runs/$cat-$sup" --device cuda --workers 4 > "$runs/$cat-$sup.eval.txt" 2>&1 &
  done
done
wait
for cat in "$@"; do
  for sup in self pose; do
    echo "== $cat $sup"; grep -E "samples_per|seconds" "$runs/$cat-$sup.train.txt"
    tail -1 "$runs/$cat-$sup/train_cc.log" | cut -c1-300
    grep -E "^\| $cat" "$runs/$cat-$sup/results.md" || tail -3 "$runs/$cat-$sup.eval.txt"
    python3 benchmarks/collapse_check.py "$data" "$cat" "$runs/$cat-$sup"
  done
done
