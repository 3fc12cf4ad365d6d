# One multi-GPU call for the DDP scaling check (issue 8): chair data, the 2-GPU tests, then
# benchmarks/ddp_scaling.py at G = 1 and at every G up to the GPUs present (two loss curves
# each: the run-to-run noise), and its report.
#   bash benchmarks/ddp_device.sh [COUNT] [extra ddp_scaling.py run flags...]
# Writes $OUT/ddp_report.txt, ddp_gpus*.json, ddp_run*.log and (unless SKIP_TESTS=1) ddp_tests.txt.
set -uo pipefail
. benchmarks/device_setup.sh || exit 1
count=${1:-2000}; shift || true
out=${OUT:-/tmp/out}; mkdir -p "$out"
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
echo "GPUs: $gpus, NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE-unset}" | tee "$out/ddp_report.txt"
start=$SECONDS
[ -d data/proc/chair ] || bash benchmarks/make_procedural.sh data/proc "$count" 16 4 chair
echo "data: $((SECONDS - start)) s" | tee -a "$out/ddp_report.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout 180 python3 -m pytest -q -x tests/training/test_ddp.py \
    -k "captured or two_processes" >"$out/ddp_tests.txt" 2>&1
  echo "tests: rc $? after $((SECONDS - start)) s" | tee -a "$out/ddp_report.txt"
fi
rm -rf data/ddp
for g in $(seq 1 "$gpus"); do
  [ "$g" = 1 ] || [ "$g" = 2 ] || [ "$g" = 4 ] || [ "$g" = 8 ] || continue
  timeout "${G_TIMEOUT:-270}" torchrun --standalone --nproc_per_node="$g" benchmarks/ddp_scaling.py run \
    data/proc chair data/ddp --curve-repeats 2 "$@" 2>&1 | grep -v Warning \
    >"$out/ddp_run$g.log"
  echo "G=$g: rc ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/ddp_report.txt"
  cp data/ddp/gpus"$g".json "$out/ddp_gpus$g.json" 2>/dev/null
done
python3 benchmarks/ddp_scaling.py report data/ddp | tee -a "$out/ddp_report.txt"
