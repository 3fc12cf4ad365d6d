# Issue 6: does the large-batch schedule reach metrics no worse than the paper's batch-2 schedule
# at the same number of samples? Both pose-supervised with the ssl3d preset's loss forms, both
# with the CUDA-graph step; the sample budget is what batch 2 trains in SECONDS at MS_PER_STEP.
#   bash benchmarks/schedule_compare.sh DATA_DIR CATEGORY SECONDS MS_PER_STEP
set -euo pipefail
data=$1; cat=$2; secs=$3; ms=$4
steps2=$(python3 -c "print(int($secs * 1000 / $ms) // 32 * 32)")
steps64=$(( steps2 / 32 ))
echo "budget: $(( steps2 * 2 )) samples = $steps2 steps at batch 2 = $steps64 steps at batch 64"
printf '%s\n' \
  "sched-b2 $cat --batch-size 2 --lr 5e-4 --steps $steps2 --log-every 2000" \
  "sched-b64 $cat --batch-size 64 --lr 1e-3 --steps $steps64 --log-every 100" |
  bash benchmarks/sweep_multi.sh "$data" "${RUNS:-runs}" "--preset ssl3d --supervision pose --cuda-graph"
