#!/usr/bin/env bash
# Headless launcher for run tiny-lora, written by sft-tui 0.1.0.
#
#   bash run_sft.sh                 start training detached (survives logout); log in train.log
#   bash run_sft.sh --foreground    run attached; exit with llamafactory-cli's status (Slurm, tests)
#   bash run_sft.sh --resume        continue from the newest checkpoint (with or without --foreground)
set -euo pipefail

RUN_DIR=@ROOT@/runs/tiny-lora
OUTPUT_DIR=@ROOT@/saves/tiny-lora

foreground=0
resume=0
for arg in "$@"; do
    case "$arg" in
        --foreground) foreground=1 ;;
        --resume) resume=1 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "run_sft.sh: unknown option $arg (use --foreground, --resume)" >&2; exit 2 ;;
    esac
done

if [ "$foreground" -eq 0 ]; then
    # Detached: a new session (setsid) that ignores hang-ups (nohup), so closing the terminal or
    # the sft-tui app never stops training. The child writes run.pid itself.
    rm -f -- "$RUN_DIR/run.pid" "$RUN_DIR/exit_code"
    args=(--foreground)
    if [ "$resume" -eq 1 ]; then args+=(--resume); fi
    setsid nohup bash "$0" "${args[@]}" >"$RUN_DIR/train.log" 2>&1 </dev/null &
    for _ in $(seq 1 50); do
        [ -s "$RUN_DIR/run.pid" ] && break
        sleep 0.1
    done
    echo "Training started in the background (pid $(cat "$RUN_DIR/run.pid" 2>/dev/null || echo '?'))."
    echo "Watch it:  sft-tui monitor $(printf '%q' "$RUN_DIR")"
    echo "      or:  tail -f $(printf '%q' "$RUN_DIR/train.log")"
    echo "Stop it:   sft-tui stop $(printf '%q' "$RUN_DIR")"
    exit 0
fi

# run.pid and exit_code are how `sft-tui monitor/status/stop` find this run, however it was started.
rm -f -- "$RUN_DIR/exit_code"
echo "$$" >"$RUN_DIR/run.pid"

# The training environment: the virtualenv @ROOT@/venv
VENV=@ROOT@/venv
if [ ! -f "$VENV/bin/activate" ]; then
    echo "run_sft.sh: no virtualenv at $VENV (expected $VENV/bin/activate)" >&2
    exit 127
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if ! command -v llamafactory-cli >/dev/null 2>&1; then
    echo "run_sft.sh: llamafactory-cli not found; install it in the training environment: pip install 'llamafactory==0.9.5'" >&2
    exit 127
fi

export RECORD_VRAM=1
export LLAMABOARD_ENABLED=1
export LLAMABOARD_WORKDIR=@ROOT@/saves/tiny-lora

args=(train "$RUN_DIR/train.yaml")
if [ "$resume" -eq 1 ]; then
    # The newest checkpoint-N by N; nothing (not an error) when the output directory is empty or absent.
    checkpoint=$(find "$OUTPUT_DIR" -maxdepth 1 -type d -name 'checkpoint-*' 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -n 1 || true)
    if [ -n "$checkpoint" ]; then checkpoint="$OUTPUT_DIR/checkpoint-$checkpoint"; fi
    if [ -z "$checkpoint" ]; then
        echo "run_sft.sh: --resume: no checkpoint in $OUTPUT_DIR yet" >&2
        exit 1
    fi
    echo "Resuming from $checkpoint"
    args+=("resume_from_checkpoint=$checkpoint" "overwrite_output_dir=false")
fi

set +e
llamafactory-cli "${args[@]}"
status=$?
set -e
echo "$status" >"$RUN_DIR/exit_code"
exit "$status"
