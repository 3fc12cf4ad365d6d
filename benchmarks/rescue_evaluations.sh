# Runs of a sweep that finished training but whose evaluation a time limit cut off (session 14
# lost five of twelve that way): score each with a quick Chamfer-only evaluation (no EMD), side
# by side, and add its test rows to the run's summary, marked as such.
#   bash benchmarks/rescue_evaluations.sh RUNS_DIR SUMMARY_DIR SECONDS [DEVICE]   (SECONDS an integer)
# A run is NAME/ beside NAME.trained (benchmarks/sweep_multi.sh's marks) in RUNS_DIR or one
# folder below it (device_sweep.sh's runs/GPU/NAME); runs whose training failed are skipped.
# In session 15 twelve of them (4 GPUs, 64 cores) all ran out of their 55 s: each had started a
# thread per core, and all ran on the first GPU. So the CPU cores are shared out between them,
# and with DEVICE cuda (the default) a run in runs/N/ is scored on GPU N. An evaluation the
# stopped sweep left running is first given half the time to finish (session 19).
set -uo pipefail
runs=$1; summary=$2; limit=$3; device=${4:-cuda}
scored() { [ -f "$1/results.md" ] && grep "| test |" "$1/results.md" | grep -qv "mean shape"; }
todo=()
for mark in "$runs"/*.trained "$runs"/*/*.trained; do
  [ -f "$mark" ] || continue
  out=${mark%.trained}
  [ -f "$out.train_failed" ] && continue
  scored "$out" || todo+=("$out")
done
# An evaluation the limit interrupted can go on after its sweep was stopped and finish in the
# meantime (session 19 lost two runs' rows that way): its results.md then has the rows, the
# summary (written by the stopped sweep) not. Checked again at the end, as one may finish later.
late_rows() {
  for mark in "$runs"/*.trained "$runs"/*/*.trained; do
    [ -f "$mark" ] || continue
    local out=${mark%.trained}
    local sum="$summary/$(basename "$out").txt"
    if scored "$out" && [ -f "$sum" ] && ! grep -q "| test |" "$sum"; then
      { echo "rows of an evaluation that finished after the sweep's time limit:"
        grep "| test |" "$out/results.md" | sort -u; } >> "$sum"
    fi
  done
}
late_rows
[ "${#todo[@]}" -eq 0 ] && exit 0
threads=$(( $(env -u OMP_NUM_THREADS nproc) / ${#todo[@]} )); [ "$threads" -lt 1 ] && threads=1
pids=()
for out in "${todo[@]}"; do
  name=$(basename "$out") gpu=$(basename "$(dirname "$out")") dev=$device
  [ "$device" = cuda ] && [[ "$gpu" =~ ^[0-9]+$ ]] && dev=cuda:$gpu
  (
    left=$limit
    # The stopped sweep's own evaluation may still be running: let it finish (its rows, EMD
    # included, are added by late_rows) for up to half the time, rather than start a second
    # evaluation beside it in the same folder; stop it then and rescue in the other half.
    # The path as a regular expression: every character that could mean something escaped.
    pattern=$(printf '%s' "$out" | sed 's/[][\.*^$+?(){}|]/\\&/g')
    running=$(pgrep -f -- "ssl3d evaluate $pattern( |$)")
    if [ -n "$running" ]; then
      echo "rescue: $name is still being evaluated; waiting for it (at most $(( limit / 2 )) s)"
      for (( i = 0; i < limit / 2; i++ )); do
        kill -0 $running 2>/dev/null || break
        sleep 1
      done
      if kill -0 $running 2>/dev/null; then
        kill $running 2>/dev/null
        for (( i = 0; i < 5; i++ )); do kill -0 $running 2>/dev/null || break; sleep 1; done
      fi
      scored "$out" && exit 0  # it finished in time: late_rows adds its rows
      left=$(( limit - limit / 2 - 5 )); [ "$left" -lt 1 ] && left=1
    fi
    echo "rescue: $name trained but was not scored; a Chamfer-only evaluation on $dev (at most $left s, $threads threads)"
    OMP_NUM_THREADS=$threads timeout "$left" python3 -m ssl3d evaluate "$out" --device "$dev" \
      --no-emd --no-progress > "$out.rescue.txt" 2>&1
    rc=$?
    if [ "$rc" = 124 ]; then echo "rescue: $name ran out of its $left s"
    elif [ "$rc" != 0 ]; then echo "rescue: $name failed, see $out.rescue.txt"; tail -n 3 "$out.rescue.txt"; fi
    if scored "$out"; then
      { echo "rows of a Chamfer-only evaluation after the time limit (EMD not computed):"
        grep "| test |" "$out/results.md" | sort -u
        grep -h "^label-free" "$out.rescue.txt"; } >> "$summary/$name.txt"
    fi
  ) &
  pids+=($!)
done
wait "${pids[@]}"
late_rows
exit 0
