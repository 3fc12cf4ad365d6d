# Source this on a GPU machine without network: installs the carried wheels (.whl/) and puts
# ssl3d on the path. Usage: . benchmarks/device_setup.sh
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
ssl3d() { python3 -m ssl3d "$@"; }
export PYTHONUNBUFFERED=1
