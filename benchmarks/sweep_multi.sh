# Train several (category, configuration) runs side by side on one GPU; each run is evaluated as
# soon as it finishes and its summary (final losses, results table, collapse check) written to
# SUMMARY_DIR (default RUNS_DIR) as NAME.txt.
#   bash benchmarks/sweep_multi.sh DATA_DIR RUNS_DIR "COMMON FLAGS" < lines of "NAME CATEGORY FLAGS..."
# A line's flags may contain " -- NN FLAGS": the run then continues with stage nn and those flags.
# A line "NAME CATEGORY @BASE -- NN FLAGS" skips stage cc and starts stage nn from the cc.pt of the
# line named BASE (a line above it) once that has finished, with BASE's flags followed by its own nn
# flags: several nn variants share one cc run. "NAME CATEGORY @BASE CC FLAGS [-- NN FLAGS]" runs
# a second stage cc first, from BASE's cc.pt (--init), with BASE's flags then CC FLAGS (later
# flags win): a two-phase stage cc, such as a template phase then per-image shapes. A flag value
# "@@BASE" or "@@BASE/FILE" (e.g. --pose-labels @@BASE, self-training) waits until the line named
# BASE has finished training and stands for its run folder (or that file in it).
# With PICTURES=1 each run also leaves SUMMARY_DIR/NAME.png (its 4 best and 4 worst test clouds).
# With REAL=DIR (benchmarks/make_real.sh) each run is also scored on that data set, with the
# rotation fitted on the procedural validation split; with REFINE=N a run with an nn stage is
# also scored after N steps of test-time refinement, and its cc checkpoint on its own.
# EVAL_FLAGS (e.g. --no-emd, for a large test split) go to every ssl3d evaluate. RESUME=1 keeps
# the runs of an earlier sweep in RUNS_DIR: a stage cc cut off goes on from its cc_last.pt, a
# finished one is not trained again, and every run is scored afresh. For stage-CC lines of the
# same sweep file only: a kept run's flags are not compared with the line's, and stage nn is
# neither resumed nor kept (a cut-off nn_last.pt makes the line fail).
set -uo pipefail
data=$1; runs=$2; common=$3
summary=${SUMMARY_DIR:-$runs}
mkdir -p "$runs" "$summary"
resolve() {  # FLAGS with each @@BASE[/FILE] made BASE's run folder (or that file), once BASE has
  # trained; fails, naming BASE, when BASE's training failed
  local word base ws out=()
  read -ra ws <<< "$1"
  for word in "${ws[@]}"; do
    if [[ "$word" == @@* ]]; then
      word=${word#@@}; base=${word%%/*}
      while [ ! -f "$runs/$base.trained" ]; do sleep 5; done
      [ -f "$runs/$base.train_failed" ] && { echo "$base"; return 1; }
      word="$runs/$word"
    fi
    out+=("$word")
  done
  echo "${out[*]}"
}
one() {
  local name=$1 cat=$2; shift 2
  local all="$*"
  all=${all% --}  # a line ending in " --" has no nn flags
  local flags=${all%% -- *} nn=""
  [[ "$all" == *" -- "* ]] && nn=${all#* -- }
  local out="$runs/$name" sum="$summary/$name.txt" label=$flags
  rm -f "$out.eval.txt" "$out.diag.txt"  # nothing from an earlier sweep
  local init=""
  if [[ "$flags" == @* ]] && [[ "$flags" != @@* ]]; then
    local base=${flags%% *} extra=""
    base=${base#@}
    [[ "$flags" == *" "* ]] && extra=${flags#* }
    while [ ! -f "$runs/$base.cc_done" ] && [ ! -f "$runs/$base.cc_failed" ]; do sleep 5; done
    if [ -f "$runs/$base.cc_failed" ]; then
      echo "== $name ($cat): stage cc of $base failed" | tee "$sum"
      touch "$out".{cc_failed,trained,train_failed}; return
    fi
    flags="$(cat "$runs/$base.flags")${extra:+ $extra}"  # later flags win
    mkdir -p "$out"
    if [ -z "$extra" ]; then  # stage nn goes on from BASE's cc.pt (and its self-training labels)
      cp "$runs/$base/cc.pt" "$out/cc.pt"
      [ -f "$runs/$base/cc_last.pt" ] && cp "$runs/$base/cc_last.pt" "$out/"  # for --carry-optimiser
      [ -f "$runs/$base/pose_labels.pt" ] && cp "$runs/$base/pose_labels.pt" "$out/"
    else
      init="$runs/$base/cc.pt"
    fi
  fi
  local f2 n2 bad=""  # resolve prints the resolved flags, or the base whose training failed
  if ! f2=$(resolve "$flags"); then bad=$f2; elif ! n2=$(resolve "$nn"); then bad=$n2; fi
  if [ -n "$bad" ]; then
    echo "== $name ($cat): the training of $bad failed" | tee "$sum"
    touch "$out".{cc_failed,trained,train_failed}; return
  fi
  flags=$f2 nn=$n2
  echo "$flags" > "$out.flags"  # what a line built on this one starts from
  if [[ "$label" != @* ]] || [ -n "$init" ]; then
    local again=""  # RESUME=1 (a warm machine's runs cut off by a call's limit): stage cc goes on
    if [ "${RESUME:-0}" = 1 ] && [ -f "$out/cc_last.pt" ] && [ ! -f "$out/cc.pt" ]; then again=--resume
    elif [ "${RESUME:-0}" != 1 ] || [ ! -f "$out/cc.pt" ]; then
      rm -rf "$out" "$out.train.txt"  # a sweep run again starts the line afresh (training refuses an earlier nn.pt)
    fi
    if [ -f "$out/cc.pt" ]; then :  # RESUME=1: stage cc had finished
    elif ! python3 -m ssl3d train "$data" --category "$cat" --out "$out" --device cuda --no-progress \
        $common $flags ${init:+--init "$init"} $again >> "$out.train.txt" 2>&1; then
      touch "$out".{cc_failed,train_failed}
    fi
  fi
  [ -f "$out.cc_failed" ] || touch "$out.cc_done"
  if [ -n "$nn" ] && [ -f "$out.cc_failed" ]; then
    touch "$out.train_failed"  # no stage nn from a stage cc that failed (or from an older one)
  elif [ -n "$nn" ]; then
    python3 -m ssl3d train "$data" --category "$cat" --out "$out" --device cuda --no-progress \
      --stage nn $common $flags $nn > "$out.train_nn.txt" 2>&1 || touch "$out.train_failed"
  fi
  touch "$out.trained"  # lines waiting on it go on (or stop by name: train_failed)
  report() {  # the summary so far: rewritten after every evaluation, so a cut-off run keeps it
    {
      echo "== $name ($cat) $label${nn:+ -- nn $nn}"
      for s in cc nn; do  # training seconds, labelled by stage
        f=$out.train.txt; [ "$s" = nn ] && f=$out.train_nn.txt
        [ -f "$f" ] && printf '%s ' "$s $(grep -ho '"seconds": *[0-9.]*' "$f" | tr -d ' \n')"
      done; echo
      for s in cc nn; do [ -f "$out/train_$s.log" ] && tail -n 1 "$out/train_$s.log" | cut -c1-300; done
      grep -h "pose collapse" "$out.train.txt" "$out.train_nn.txt" 2>/dev/null | head -n 1 | cut -c1-300
      for s in cc nn; do  # the collapse statistic at every log (the first 10 and last 50 of a
        # longer list): how a collapse shows over time; and how often a view search moved the view
        v=$(grep -ho 'view_distribution=[^ ]*' "$out/train_$s.log" 2>/dev/null | cut -d= -f2)
        [ -n "$v" ] && echo "view_distribution by log ($s):" $(printf '%s\n' $v | awk '
          { x[NR] = $1 }
          END { for (i = 1; i <= NR; i++) {
                  if (NR > 60 && i > 10 && i <= NR - 50) { if (i == 11) printf "... "; continue }
                  if (x[i] ~ /^[-+]?[0-9]/) printf "%.2f ", x[i]; else printf "%s ", x[i] } }')
        v=$(grep -ho 'view_search_moved=[^ ]*' "$out/train_$s.log" 2>/dev/null | tail -n 1)
        [ -n "$v" ] && echo "last log ($s): $v $(grep -ho 'view_search_mask=[^ ]*' "$out/train_$s.log" | tail -n 1)"
        v=$(grep -ho 'view_search_turned=[^ ]*' "$out/train_$s.log" 2>/dev/null | cut -d= -f2)
        [ -n "$v" ] && echo "view_search_turned, every 5th log ($s):" $(printf '%s\n' $v | awk 'NR % 5 == 1 { printf "%.3f ", $1 }')
      done
      [ -f "$out/results.md" ] && grep -E "^\| $cat" "$out/results.md" | sort -u
      grep -h "^label-free" "$out.eval.txt" 2>/dev/null | head -n 1  # the run's own data's
      [ -f "$out.diag.txt" ] && cat "$out.diag.txt"
    } > "$sum"
  }
  ev() {
    python3 -m ssl3d evaluate "$@" --device cuda --workers "${EMD_WORKERS:-4}" ${EVAL_FLAGS:-} \
      >> "$out.eval.txt" 2>&1
    report
  }
  report
  ev "$out"
  {
    python3 benchmarks/collapse_check.py "$data" "$cat" "$out" 2>&1 | tail -n 1
    python3 benchmarks/diagnose_run.py "$data" "$cat" "$out" \
      $([ "${PICTURES:-0}" = 1 ] && echo --picture "$summary/$name.png") 2>&1 | tail -n 11
    # Airplanes: where the predicted wings and fin sit, per group of reversed clouds.
    [ "$cat" = airplane ] && python3 benchmarks/flip_analysis.py "$data" "$cat" "$out" --parts \
      2>&1 | grep -E '^  (parts|kept|reversed)|Error'
  } > "$out.diag.txt"
  [ -n "${REAL:-}" ] && ev "$out" --data "$REAL" --tag real --rotation-from test
  if [ -n "$nn" ] && [ -n "${REFINE:-}" ]; then
    ev "$out/cc.pt" --tag cc
    [ -n "${REAL:-}" ] && ev "$out/cc.pt" --data "$REAL" --tag real_cc --rotation-from cc_test
    [ -n "${REAL:-}" ] && ev "$out" --data "$REAL" --tag real --rotation-from test --refine "$REFINE"
    ev "$out" --refine "$REFINE" --rotation-from test
  fi
  report
  cat "$sum"
}
mapfile -t lines
for line in "${lines[@]}"; do
  read -r name _ <<< "$line"
  [ -z "$name" ] && continue
  rm -f "$runs/$name".{cc_done,cc_failed,trained,train_failed}  # before any line can wait on them
done
started=" "  # a line may build only on one above it: no cycles, no wait on a line never run
for line in "${lines[@]}"; do
  read -r name cat flags <<< "$line"
  [ -z "$name" ] && continue
  first=${flags%% *} missing=""
  [[ "$first" == @* ]] && [[ "$first" != @@* ]] && [[ "$started" != *" ${first#@} "* ]] && missing=$first
  for word in $flags; do
    [[ "$word" == @@* ]] && word=${word#@@} && [[ "$started" != *" ${word%%/*} "* ]] && missing=@@$word
  done
  if [ -n "$missing" ]; then
    echo "$name: '$missing' must name a line above it in this sweep (one that runs)" >&2
    touch "$runs/$name".{cc_failed,trained,train_failed}  # so that lines built on this one stop too
    continue
  fi
  started+="$name "
  one "$name" "$cat" $flags &
done
wait
