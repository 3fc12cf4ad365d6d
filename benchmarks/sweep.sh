# Train several configurations side by side on one GPU, then evaluate each and check for shape
# collapse. bash benchmarks/sweep.sh DATA_DIR CATEGORY RUNS_DIR "COMMON FLAGS" < lines of "NAME FLAGS..."
set -uo pipefail
data=$1; cat=$2; runs=$3; common=$4
mkdir -p "$runs"
names=()
while read -r name flags; do
  [ -z "$name" ] && continue
  names+=("$name")
  python3 -m ssl3d train "$data" --category "$cat" --out "$runs/$name" --device cuda --no-progress \
    $common $flags > "$runs/$name.train.txt" 2>&1 &
done
wait
for name in "${names[@]}"; do
  python3 -m ssl3d evaluate "$runs/$name" --device cuda --workers 2 > "$runs/$name.eval.txt" 2>&1 &
done
wait
for name in "${names[@]}"; do
  echo "== $name: $(grep -E 'samples_per' "$runs/$name.train.txt")"
  tail -1 "$runs/$name/train_cc.log" | cut -c1-260
  grep -E "^\| $cat" "$runs/$name/results.md" || tail -3 "$runs/$name.eval.txt"
  python3 benchmarks/collapse_check.py "$data" "$cat" "$runs/$name"
done
