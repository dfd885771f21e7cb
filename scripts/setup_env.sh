#!/usr/bin/env bash
# Create or update the project's virtualenv (.venv, or $SFT_TUI_VENV).
#
#   scripts/setup_env.sh app    sft-tui itself (light: textual, pynvml, yaml, jinja, ...)
#   scripts/setup_env.sh test   + the `train` extra (LLaMA-Factory) and the `dev` extra,
#                               with torch pinned by constraints/test.txt (the CPU build)
#
# Known trap, fixed here: llamafactory 0.9.5 depends on torchvision and torchaudio, and pip
# picks wheels built for a different (CUDA) torch. With torch 2.13.0+cpu:
#   - torchvision registers ops against a C++ library that fails to load, so every
#     `import transformers` model class fails with "operator torchvision::nms does not exist".
#     Nothing in text-only SFT needs torchvision and transformers works without it: uninstall.
#   - torchaudio's compiled libraries fail to load, but llamafactory.data.mm_plugin imports
#     torchaudio at module level. torchaudio runs in pure-Python mode when its library files
#     are absent (its own `_load_lib` returns False), so delete those .so files: the import
#     works, and only audio datasets (which need torchcodec anyway) would be affected.
# The fix runs after every install, because pip reinstalls both whenever it resolves
# llamafactory again. `pip check` will name the missing torchvision; that is expected.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-app}
venv=${SFT_TUI_VENV:-.venv}

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "sft-tui needs Python >= 3.11; none found (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

if [ ! -x "$venv/bin/python" ]; then
    python=$(pick_python)
    echo "Creating $venv with $python"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

case "$mode" in
    app)
        "${pip[@]}" -e .
        touch "$venv/.app-ready"
        ;;
    test)
        "${pip[@]}" -c constraints/test.txt -e '.[train,dev]'
        "$venv/bin/python" -m pip uninstall --quiet --yes torchvision 2>/dev/null || true
        site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        rm -f "$site"/torchaudio/lib/*.so
        # Prove the environment trains: the import chain `llamafactory-cli train` uses.
        "$venv/bin/python" -c 'import transformers.models.qwen2, llamafactory.data.mm_plugin, llamafactory.train.tuner' \
            || { echo "setup: llamafactory does not import in $venv" >&2; exit 1; }
        # The real-terminal test drives sft-tui in tmux; install it where we can (CI runs as root on Debian).
        if ! command -v tmux >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            apt-get install -y -q tmux >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q tmux >/dev/null 2>&1) \
                || echo "setup: could not install tmux; the real-terminal test will be skipped" >&2
        fi
        touch "$venv/.app-ready" "$venv/.test-ready"
        ;;
    *)
        echo "usage: $0 app|test" >&2
        exit 2
        ;;
esac
