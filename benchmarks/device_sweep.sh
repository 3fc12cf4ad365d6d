# One GPU call: data, the GPU-only tests beside it, a sweep, and everything collected in $OUT
# (at most 8 files come back: one summary text, the pictures, the test log).
#   bash benchmarks/device_sweep.sh SWEEP_FILE "CATEGORIES" [SECONDS]
# Environment: as benchmarks/sweep_multi.sh (EMD_WORKERS, PICTURES, REAL, REFINE); GPUTEST=1
# also runs the GPU-only tests; REAL_MESHES=DIR renders those meshes into data/real first.
set -uo pipefail
sweep=$1; cats=$2; limit=${3:-540}
. benchmarks/device_setup.sh
name=$(basename "$sweep" .txt)
start=$(date +%s)
if [ "${GPUTEST:-0}" = 1 ]; then
  python3 -m pytest -q tests/training/test_train.py -k cuda_graph > "$OUT/gputest_$name.txt" 2>&1 &
fi
bash benchmarks/make_procedural.sh data/proc 2000 16 4 $cats
[ -n "${REAL_MESHES:-}" ] && bash benchmarks/make_real.sh data/real "$REAL_MESHES" $cats
echo "data ready after $(( $(date +%s) - start )) s"
SUMMARY_DIR=/tmp/summary timeout $(( limit - ($(date +%s) - start) )) \
  bash benchmarks/sweep_multi.sh data/proc runs "--preset ssl3d --log-every 500 --cuda-graph" \
  < "$sweep" > /tmp/sweep.log 2>&1
wait
{
  cat /tmp/summary/*.txt
  for log in runs/*/train_*.log; do  # the half-turn vote's share over training, where logged
    grep -q half_turn_share "$log" && echo "$log half_turn_share:" \
      $(grep -o 'half_turn_share=[0-9.e-]*' "$log" | cut -d= -f2)
  done
  echo "total $(( $(date +%s) - start )) s"
} > "$OUT/$name.txt"
cp /tmp/summary/*.png "$OUT/" 2>/dev/null
tail -n 20 /tmp/sweep.log
