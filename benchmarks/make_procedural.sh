# Make procedural datasets: bash benchmarks/make_procedural.sh DATA_DIR COUNT WORKERS VIEWS CATEGORY...
# SIZE=N renders N-px images (default 64); training resizes them to its --image-size.
set -euo pipefail
data=$1; count=$2; workers=$3; views=$4; shift 4
for cat in "$@"; do
  python3 -m ssl3d synth "$cat" "$data/meshes/$cat" --count "$count" --workers "$workers" --quiet
  python3 -m ssl3d render "$data/meshes/$cat" "$data" --category "$cat" --workers "$workers" \
    --views "$views" --size "${SIZE:-64}" --quiet
done
