# One GPU call: data, the GPU tests beside it, a sweep, and the summaries collected in $OUT (the
# device tool returns at most 8 files: one summary text, the test log and, with PICTURES=1, the
# runs' pictures packed in one pictures_NAME.tar; unpack with tar -xf).
#   bash benchmarks/device_sweep.sh SWEEP_FILE[,SWEEP_FILE...] "CATEGORIES" [SECONDS]
# Several comma-separated sweep files run side by side, the i-th on GPU i (a multi-GPU kind).
# Environment: as benchmarks/sweep_multi.sh (EMD_WORKERS, EVAL_FLAGS, PICTURES, REAL, REFINE); GPUTEST=1
# also runs the CUDA-graph tests; REAL_MESHES=DIR renders those meshes into data/real first;
# COUNT, SIZE and VIEWS (default 2,000 models, 64 px, 4 views per model) go to
# benchmarks/make_procedural.sh (SIZE to make_real.sh too).
# The sweep is cut off SECONDS (default 540) less RESCUE (default 60) after the start; runs that
# trained but were not yet scored then get a Chamfer-only evaluation in the last RESCUE seconds
# (benchmarks/rescue_evaluations.sh); the summaries are written then. EXPORT="NAME ..." also
# returns those runs' final models in half precision as $OUT/NAME.pt (benchmarks/export_model.py;
# about 12 MB each at the preset's width, in int8 when half precision would exceed the tool's 16 MiB
# a file; at most four, as the tool returns at most 8 files and 64 MiB), for analysis on a CPU.
# EXPORT_INT8=1 writes them all in int8 (about 6 MB each at the preset's width): up to seven then fit.
# Sizing (4 x H200, 6,000 models, 4,500 CC + 1,500 NN steps): two runs per GPU train in about
# 185 + 70 s and were scored within a 470-540 s call (diagnostics and real-mesh rows cut off);
# three per GPU train in about 270 + 100 s, and a 560 s call scored none of them (session 15).
# One run alone on a GPU (4 x H100) trains twice the steps, 9,000 + 3,000, in 184 + 71 s, and its
# full evaluation and diagnostics fit a 570 s call (session 17). On 2 x H100 two stage-CC runs per
# GPU, each followed by three stage-NN variants from its cc.pt (six NN runs per GPU at once), had
# not finished training 412 s into the sweep (session 20): count NN runs sharing a GPU as CC runs.
# One stage-CC run per GPU followed by three stage-NN variants from its cc.pt at once (2 x H100,
# session 21) trains in 93 + 104-112 s and was scored (EMD and diagnostics) within a 520 s call,
# 391 s on a warm machine; with a 440 s limit the NN variants got Chamfer-only rows.
set -uo pipefail
sweep=$1; cats=$2; limit=${3:-540}
: "${OUT:?OUT must name the folder the summaries go to}"
. benchmarks/device_setup.sh || exit 1
IFS=, read -ra sweeps <<< "$sweep"
name=$(basename "${sweeps[0]}" .txt)
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "${#sweeps[@]}" -gt 1 ] && [ "${#sweeps[@]}" -gt "$gpus" ]; then
  echo "${#sweeps[@]} sweep files but $gpus GPUs: one sweep file per GPU" >&2; exit 1
fi
start=$(date +%s)
rm -rf /tmp/summary /tmp/sweep*.log  # a warm machine keeps them from an earlier call
[ "${RESUME:-0}" = 1 ] || rm -rf runs  # RESUME=1: go on with the runs a limit cut off (sweep_multi.sh)
if [ "${GPUTEST:-0}" = 1 ]; then
  timeout 300 python3 -m pytest -q tests/training/test_train.py -k cuda_graph \
    > "$OUT/gputest_$name.txt" 2>&1 &
fi
made="${COUNT:-2000} models, ${VIEWS:-4} views, ${SIZE:-64} px"
# A warm machine keeps data/proc; make_procedural.sh keeps what it finds, so start afresh when the
# settings differ (otherwise a smaller COUNT would train on the earlier call's models too).
[ "$(cat data/proc/made.txt 2>/dev/null)" = "$made" ] || rm -rf data/proc
bash benchmarks/make_procedural.sh data/proc "${COUNT:-2000}" 16 "${VIEWS:-4}" $cats || exit 1
echo "$made" > data/proc/made.txt
[ -n "${REAL_MESHES:-}" ] && bash benchmarks/make_real.sh data/real "$REAL_MESHES" $cats
rescue=${RESCUE:-60}
left=$(( limit - rescue - ($(date +%s) - start) ))
echo "data ready after $(( $(date +%s) - start )) s; ${left} s left for the sweep"
multi=""; [ "${#sweeps[@]}" -gt 1 ] && multi=1  # one sweep keeps the GPU mask it was given
for i in "${!sweeps[@]}"; do
  env ${multi:+CUDA_VISIBLE_DEVICES=$i} SUMMARY_DIR=/tmp/summary timeout $(( left > 1 ? left : 1 )) \
    bash benchmarks/sweep_multi.sh data/proc runs/$i "--preset ssl3d --log-every 500 --cuda-graph" \
    < "${sweeps[$i]}" > /tmp/sweep$i.log 2>&1 &
  sweep_pids+=($!)
done
wait "${sweep_pids[@]}"
[ "$rescue" -gt 0 ] && bash benchmarks/rescue_evaluations.sh runs /tmp/summary \
  $(( rescue - 5 > 1 ? rescue - 5 : 1 ))
# A run the limit stopped before its training ended has no summary (session 20 lost a whole call
# that way, blind): say how far each such run got.
mkdir -p /tmp/summary
for f in "${sweeps[@]}"; do
  while read -r n _; do
    [ -z "$n" ] || [ -f "/tmp/summary/$n.txt" ] && continue
    {
      echo "== $n: no summary: stopped by the time limit before its training ended, or never started"
      for s in cc nn; do
        log=$(ls runs/*/"$n"/train_$s.log 2>/dev/null | head -n 1)
        [ -n "$log" ] && echo "last log ($s): $(tail -n 1 "$log" | cut -c1-200)"
      done
    } > "/tmp/summary/$n.txt"
  done < "$f"
done
for n in ${EXPORT:-}; do
  run=$(ls -d runs/*/"$n" 2>/dev/null | head -n 1)
  if [ -z "$run" ]; then echo "export: no run $n"; continue; fi
  python3 benchmarks/export_model.py "$run" "$OUT/$n.pt" ${EXPORT_INT8:+--int8} || continue
  if [ "$(stat -c %s "$OUT/$n.pt")" -gt $(( 16 * 1024 * 1024 )) ]; then
    # The tool returns no file over 16 MiB (a model twice the preset's width is 20 MB in half
    # precision): int8 with per-row scales instead, a quarter of float32.
    python3 benchmarks/export_model.py "$run" "$OUT/$n.pt" --int8 && echo "export: $n in int8 (over 16 MiB in half precision)"
    [ "$(stat -c %s "$OUT/$n.pt")" -gt $(( 16 * 1024 * 1024 )) ] && echo "export: $n exceeds 16 MiB even in int8; it will not come back"
  fi
done
{ cat /tmp/summary/*.txt; echo "total $(( $(date +%s) - start )) s"; } > "$OUT/$name.txt"
if ls /tmp/summary/*.png >/dev/null 2>&1; then
  (cd /tmp/summary && tar -cf "$OUT/pictures_$name.tar" ./*.png)
fi
wait
tail -n 20 /tmp/sweep*.log
