# Two GPUs: torchrun runs (eager, then --cuda-graph) end without NCCL's warning of a process group left
# undestroyed, or (captured) at least without hanging; then the DDP tests. Writes under $OUT.
#   OUT=DIR bash benchmarks/ddp_exit_check.sh
. benchmarks/device_setup.sh
bash benchmarks/make_procedural.sh data/t 60 8 1 chair > /dev/null 2>&1 || echo "data failed"
for g in none --cuda-graph; do
  f=$OUT/torchrun_${g#--}.txt
  start=$(date +%s)
  timeout 200 torchrun --standalone --nproc_per_node=2 -m ssl3d train data/t --category chair --out runs/t_${g#--} \
    --device cuda --preset ssl3d --steps 60 --batch-size 16 --log-every 20 --no-progress $([ $g = none ] || echo $g) > $f 2>&1
  echo "rc $? after $(( $(date +%s) - start )) s" >> $f
  echo "== $g: $(tail -n 1 $f); destroy warnings: $(grep -c 'destroy_process_group' $f)"
done
timeout 240 python3 -m pytest -q -p no:warnings tests/training/test_ddp.py > $OUT/ddp_tests.txt 2>&1
echo "test_ddp: $(tail -n 1 $OUT/ddp_tests.txt)"
