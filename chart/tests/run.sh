#!/usr/bin/env bash
# Runs the chart tests: lint and render chart/ with Helm's own engine (helm-sdkpy), and
# validate every object against its Kubernetes schema. Needs Python >= 3.12 and PyPI,
# nothing else (no helm binary, no cluster). Extra arguments go to pytest.
#
#   bash chart/tests/run.sh            # from anywhere
#   PYTHON=/path/to/python3.12 bash chart/tests/run.sh -k rbac
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gateway-chart-venv and is rebuilt
# when requirements.txt or the interpreter changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${K8S_GATEWAY_CHART_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gateway-chart-venv}"

is_312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

find_python() {
    local c
    if [[ -n "${PYTHON:-}" ]]; then
        is_312 "$PYTHON" && { echo "$PYTHON"; return; }
        echo "run.sh: PYTHON=$PYTHON is not Python >= 3.12" >&2
        return 1
    fi
    # NB: try pyenv's own interpreters before the shims: a shim for a version that is
    # installed but not selected exits non-zero.
    local roots=()
    command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
    roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
    for c in python3.12 python3.13 python3.14 python3; do
        if command -v "$c" >/dev/null 2>&1 && [[ "$(command -v "$c")" != */shims/* ]] && is_312 "$c"; then
            command -v "$c"; return
        fi
    done
    for root in "${roots[@]}"; do
        for c in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
            is_312 "$c" && { echo "$c"; return; }
        done
    done
    for c in python3.12 python3.13 python3.14 python3; do
        command -v "$c" >/dev/null 2>&1 && is_312 "$c" && { command -v "$c"; return; }
    done
    echo "run.sh: no Python >= 3.12 found (helm-sdkpy needs it); install one, e.g." \
         "'pyenv install 3.12', or set PYTHON=/path/to/python3.12" >&2
    return 1
}

python="$(find_python)"
stamp="$("$python" -c 'import sys; print(sys.version)') $(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "run.sh: creating $venv with $python" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --requirement "$here/requirements.txt"
    echo "$stamp" > "$venv/.stamp"
fi

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
# -p no:cacheprovider: leave no .pytest_cache in the work tree.
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q -rfE "$@"
