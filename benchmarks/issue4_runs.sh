# Issue 4 evidence: self-supervised CC vs the pose-supervised baseline, same budget, per category.
# bash benchmarks/issue4_runs.sh DATA_DIR RUNS_DIR "TRAIN FLAGS" CATEGORY...
# (runs RUNS_DIR/<category>-self and RUNS_DIR/<category>-pose side by side via sweep_multi.sh)
set -uo pipefail
data=$1; runs=$2; flags=$3; shift 3
for cat in "$@"; do
  echo "$cat-self $cat --supervision self"
  echo "$cat-pose $cat --supervision pose"
done | bash "$(dirname "$0")/sweep_multi.sh" "$data" "$runs" "$flags"
