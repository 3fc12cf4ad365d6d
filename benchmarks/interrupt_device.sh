# GPU check of the Ctrl-C / SIGTERM handling (session 36's, tested only on the CPU there):
# a signal to torchrun (2 GPUs, NCCL) and to a one-GPU --cuda-graph run, each mid-way, then
# --resume to the end. Prints what a user sees and whether the state was kept.
#   bash benchmarks/interrupt_device.sh [GPU_A,GPU_B]   (default 0,1; writes $OUT/interrupt.txt)
# DEVICE=cpu STEPS=40 AT=20 tries the script itself on a CPU (gloo; no CUDA graph); PARTS picks
# among "ddp graph tests" (default all three).
# torchrun starts its workers in a session of their own, so a terminal's Ctrl-C reaches only
# torchrun, which passes the signal on once and kills what is left 30 s later.
set -uo pipefail
parts=${PARTS:-ddp graph tests}
[ "${DEVICE:-cuda}" = cpu ] || . benchmarks/device_setup.sh || exit 1  # the CPU try runs in a venv
gpus=${1:-0,1}
out=${OUT:-/tmp/out}; mkdir -p "$out"; report=$out/interrupt.txt
data=data/interrupt; runs=/tmp/interrupt_runs  # not runs/: device_sweep.sh clears that
rm -rf "$runs"
[ -d "$data/chair" ] || bash benchmarks/make_procedural.sh "$data" 200 8 1 chair > /dev/null
dev=${DEVICE:-cuda}; steps=${STEPS:-2000}; at=${AT:-600}; every=$(( steps >= 40 ? steps / 40 : 1 ))
graph=(--cuda-graph); [ "$dev" = cpu ] && graph=()
flags=(--category chair --preset ssl3d --steps "$steps" --log-every "$every" --batch-size 64 --no-progress)

# $1 name, $2 signal, $3 step to signal after, then the command: runs it in the background,
# signals it once the log passes the step, and reports the exit status and the saved step.
interrupt() {
  local name=$1 sig=$2 at=$3; shift 3
  local t0=$SECONDS
  # Started with SIGINT's default action: a job a script starts in the background inherits it
  # ignored (bash cannot undo that), and training rightly leaves an ignored signal ignored.
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@" > "$runs/$name.out" 2>&1 &
  local pid=$!
  until grep -q "^step $at " "$runs/$name/train_cc.log" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || break; sleep 0.5
  done
  kill -"$sig" $pid
  wait $pid; local rc=$?
  python3 - "$runs/$name" "$rc" "$sig" "$((SECONDS - t0))" <<'EOF' >> "$report"
import pathlib, sys
import torch
run, rc, sig, secs = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
last = run / "cc_last.pt"
step = torch.load(last, map_location="cpu", weights_only=True)["step"] if last.exists() else None
print(f"{run.name}: SIG{sig} -> exit {rc} after {secs} s; cc_last.pt at step {step}; "
      f"cc.pt {'exists' if (run / 'cc.pt').exists() else 'absent'}")
EOF
  grep -i "interrupt\|resume\|error\|Traceback" "$runs/$name.out" | head -n 8 | sed 's/^/  | /' >> "$report"
}

# After --resume: did the run end at its last step with one log line per log interval?
resumed() {
  local name=$1; shift
  "$@" --resume > "$runs/$name.resume.out" 2>&1; local rc=$?
  python3 - "$runs/$name" "$rc" "$every" <<'EOF' >> "$report"
import pathlib, sys
import torch
run, rc, every = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cc = run / "cc.pt"
step = torch.load(cc, map_location="cpu", weights_only=True)["step"] if cc.exists() else None
steps = [int(l.split()[1]) for l in (run / "train_cc.log").read_text().splitlines()
         if l.startswith("step ")]
print(f"{run.name} --resume: exit {rc}; cc.pt at step {step}; log steps {steps[0]}..{steps[-1]}, "
      f"{len(steps)} lines, one every {every} steps: {steps == list(range(every, steps[-1] + 1, every))}")
EOF
  tail -n 3 "$runs/$name.resume.out" | sed 's/^/  | /' >> "$report"
}

mkdir -p "$runs"
echo "GPUs $gpus; torch $(python3 -c 'import torch; print(torch.__version__)')" > "$report"
for sig in INT TERM; do
  [[ " $parts " == *" ddp "* ]] || break
  name=ddp-$sig
  cmd=(env CUDA_VISIBLE_DEVICES=$gpus torchrun --standalone --nproc_per_node=2 -m ssl3d train
       "$data" --out "$runs/$name" --device "$dev" "${flags[@]}")
  interrupt "$name" "$sig" "$at" "${cmd[@]}"
  resumed "$name" "${cmd[@]}"
done
if [[ " $parts " == *" graph "* ]]; then
name=graph-INT
cmd=(env CUDA_VISIBLE_DEVICES=${gpus%%,*} python3 -m ssl3d train "$data" --out "$runs/$name"
     --device "$dev" "${graph[@]}" "${flags[@]}")
interrupt "$name" INT "$at" "${cmd[@]}"
resumed "$name" "${cmd[@]}"
fi

# The DDP tests on these two GPUs (NCCL's captured step; the gloo ones, the signal's among them).
if [[ " $parts " == *" tests "* ]]; then
  env CUDA_VISIBLE_DEVICES=$gpus timeout 240 python3 -m pytest -q tests/training/test_ddp.py \
    > "$out/interrupt_ddp_tests.txt" 2>&1
  echo "tests/training/test_ddp.py on GPUs $gpus: $(tail -n 1 "$out/interrupt_ddp_tests.txt")" >> "$report"
fi
cat "$report"
