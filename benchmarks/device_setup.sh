# Source this on a GPU machine without network: installs the carried wheels (.whl/) and puts
# ssl3d on the path. Usage: . benchmarks/device_setup.sh
# .whl/ is git-ignored, so a fresh checkout must make it before a device call (the device has
# Python 3.12 and no network):
#   pip download "trimesh>=4.0,<6" "embreex>=2.17,<5" --python-version 3.12 --only-binary=:all: \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --no-deps -d .whl
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
ssl3d() { python3 -m ssl3d "$@"; }
export PYTHONUNBUFFERED=1
