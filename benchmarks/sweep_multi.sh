# Train several (category, configuration) runs side by side on one GPU; each run is evaluated as
# soon as it finishes and its summary (final losses, results table, collapse check) written to
# SUMMARY_DIR (default RUNS_DIR) as NAME.txt.
#   bash benchmarks/sweep_multi.sh DATA_DIR RUNS_DIR "COMMON FLAGS" < lines of "NAME CATEGORY FLAGS..."
# A line's flags may contain " -- NN FLAGS": the run then continues with stage nn and those flags.
set -uo pipefail
data=$1; runs=$2; common=$3
summary=${SUMMARY_DIR:-$runs}
mkdir -p "$runs" "$summary"
one() {
  local name=$1 cat=$2; shift 2
  local all="$*"
  local flags=${all%% -- *} nn=""
  [[ "$all" == *" -- "* ]] && nn=${all#* -- }
  local out="$runs/$name" sum="$summary/$name.txt"
  python3 -m ssl3d train "$data" --category "$cat" --out "$out" --device cuda --no-progress \
    $common $flags > "$out.train.txt" 2>&1
  if [ -n "$nn" ]; then
    python3 -m ssl3d train "$data" --category "$cat" --out "$out" --device cuda --no-progress \
      --stage nn $common $flags $nn > "$out.train_nn.txt" 2>&1
  fi
  python3 -m ssl3d evaluate "$out" --device cuda --workers 2 > "$out.eval.txt" 2>&1
  {
    echo "== $name ($cat) $flags${nn:+ -- nn $nn}"
    grep -h '"seconds"' "$out".train*.txt | tr -d ' \n'; echo
    for s in cc nn; do [ -f "$out/train_$s.log" ] && tail -n 1 "$out/train_$s.log" | cut -c1-300; done
    grep -E "^\| $cat" "$out/results.md" || tail -n 3 "$out.eval.txt"
    python3 benchmarks/collapse_check.py "$data" "$cat" "$out" 2>&1 | tail -n 1
  } > "$sum"
  cat "$sum"
}
while read -r name cat flags; do
  [ -z "$name" ] && continue
  one "$name" "$cat" $flags &
done
wait
