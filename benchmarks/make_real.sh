# Render the real development meshes (../shared/meshes or MESH_ROOT) into an evaluation-only data
# set: every model is in the test split (and, for the loader, in train and val too: a model
# evaluated on it must take its rotation from the procedural validation split, --rotation-from).
#   bash benchmarks/make_real.sh DATA_DIR [MESH_ROOT] [CATEGORY...]   (SIZE=N: N-px images, default 64)
set -euo pipefail
data=$1; root=${2:-../shared/meshes}; shift $(( $# > 1 ? 2 : 1 ))
cats=${*:-airplane car chair}
for cat in $cats; do
  python3 -m ssl3d render "$root/$cat" "$data" --category "$cat" --views 10 --workers 2 \
    --size "${SIZE:-64}" --quiet
  cat "$data/splits/${cat}"_{train,val,test}.txt | sort -u > "$data/splits/${cat}_all.tmp"
  for s in train val test; do cp "$data/splits/${cat}_all.tmp" "$data/splits/${cat}_$s.txt"; done
  rm -f "$data/splits/${cat}"_*.tmp
  rm -f "$data/$cat"/*/pcl_16384.npy  # only the 1024-point clouds are scored
done
