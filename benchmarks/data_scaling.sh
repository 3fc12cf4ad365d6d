# Does more training data help? One GPU call: BIG procedural models of CATEGORY (one rendered
# view each), and a SMALL-model data set that shares their renders and their val/test lists
# (200 each) and trains on the first 0.8 x SMALL of the big training list. The same sweep then
# runs on both side by side: the big set on GPU 0, the small one on GPU 1 (GPU 0 too with one).
#   bash benchmarks/data_scaling.sh CATEGORY BIG SMALL SWEEP_FILE [SECONDS]
# SMALL = 0 runs the big set alone; otherwise 0 < SMALL < BIG (SMALL = 2000 gives the sizes of the
# results tables' 1,600 / 200 / 200 split, but other models, one view each). Environment: as
# benchmarks/sweep_multi.sh (EMD_WORKERS, PICTURES). Summaries go to $OUT/scaling_BIG.txt and $OUT/scaling_SMALL.txt (run
# names get a -BIG / -SMALL suffix there); with PICTURES=1 the pictures come back packed in
# $OUT/pictures.tar.
set -uo pipefail
usage="usage: bash benchmarks/data_scaling.sh CATEGORY BIG SMALL SWEEP_FILE [SECONDS]"
[ $# -ge 4 ] || { echo "$usage" >&2; exit 2; }
cat=$1; big=$2; small=$3; sweep=$4; limit=${5:-540}
: "${OUT:?OUT must name the folder the summaries go to}"
if ! [[ "$big" =~ ^[0-9]+$ && "$small" =~ ^[0-9]+$ ]] || [ "$small" -ge "$big" ]; then
  echo "BIG and SMALL must be whole numbers with SMALL < BIG (got $big, $small)" >&2; exit 2
fi
[ -f "$sweep" ] || { echo "no sweep file $sweep" >&2; exit 2; }
. benchmarks/device_setup.sh || exit 1
start=$(date +%s)
rm -rf runs /tmp/summary_* /tmp/scaling_pics  # a warm machine keeps them from an earlier call
bash benchmarks/make_procedural.sh "data/p$big" "$big" 16 1 "$cat" || exit 1
s="data/p$big/splits"
for split in val test; do  # a fixed 200-model val and test list for both sizes
  head -n 200 "$s/${cat}_$split.txt" > "/tmp/$split.txt" && mv "/tmp/$split.txt" "$s/${cat}_$split.txt"
done
sizes="$big"
if [ "$small" -gt 0 ]; then
  sizes="$big $small"
  rm -rf "data/p$small" && mkdir -p "data/p$small/splits"
  ln -s "$PWD/data/p$big/$cat" "data/p$small/$cat"
  head -n $(( small * 8 / 10 )) "$s/${cat}_train.txt" > "data/p$small/splits/${cat}_train.txt"
  cp "$s/${cat}_val.txt" "$s/${cat}_test.txt" "data/p$small/splits/"
fi
wc -l data/p*/splits/*.txt
left=$(( limit - ($(date +%s) - start) ))
echo "data ready after $(( $(date +%s) - start )) s; ${left} s left for the sweep"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
i=0; pids=()
for n in $sizes; do
  env CUDA_VISIBLE_DEVICES=$(( gpus > 1 ? i : 0 )) SUMMARY_DIR="/tmp/summary_$n" \
    timeout $(( left > 1 ? left : 1 )) bash benchmarks/sweep_multi.sh "data/p$n" "runs/$n" \
    "--preset ssl3d --log-every 500 --cuda-graph" < "$sweep" > "/tmp/scaling_$n.log" 2>&1 &
  pids+=($!); i=$(( i + 1 ))
done
wait "${pids[@]}"
for n in $sizes; do
  sed "s/^== \([^ ]*\)/== \1-$n/" /tmp/summary_"$n"/*.txt > "$OUT/scaling_$n.txt"
done
echo "total $(( $(date +%s) - start )) s" >> "$OUT/scaling_$big.txt"
mkdir -p /tmp/scaling_pics
for n in $sizes; do
  for f in /tmp/summary_"$n"/*.png; do
    [ -f "$f" ] && cp "$f" "/tmp/scaling_pics/$(basename "$f" .png)-$n.png"
  done
done
if ls /tmp/scaling_pics/*.png >/dev/null 2>&1; then
  (cd /tmp/scaling_pics && tar -cf "$OUT/pictures.tar" ./*.png)
fi
for n in $sizes; do tail -n 5 "/tmp/scaling_$n.log"; done
