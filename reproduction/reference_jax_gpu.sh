#!/usr/bin/env bash
# Gowalla MF on a GPU machine with reproduction/reference_jax.py: six runs side by side.
#   bash reproduction/reference_jax_gpu.sh DATA_DIR OUT_DIR [DEADLINE_S]
# ours_*: our Gowalla MF block's settings (fast-mf-gowalla with the reference loss form,
#         60 epochs, patience 5): the package's paper-protocol rows, to check that the two
#         implementations agree.
# ref_*:  the reference code's recipe (paper-mf-gowalla: lr 1e-4, W = 100, 1024 negatives
#         per row, dropout 0.1, reference form, 2β 0.25, m_u the 0.9 quantile), 300 epochs;
#         ref_at_late turns τ_u on only after the warm-up.
# EXTRA: flags appended to every run (a CPU smoke: EXTRA="--max-users 150 --epochs 2").
set -u
data=$1 out=$2 deadline=${3:-430}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
mkdir -p "$out"
run() {
  local name=$1; shift
  python3 reproduction/reference_jax.py --data "$data" --out "$out/$name.jsonl" \
    --deadline-s "$deadline" "$@" ${EXTRA:-} > /dev/null 2>> "$out/stderr.log" &
}
{ python3 -c "import jax; print('jax', jax.__version__, jax.devices())"; nvidia-smi -L; } \
  > "$out/env.log" 2>&1
run ours_a0 --recipe fast-mf-gowalla --loss-form reference --strategy adap-tau0 --epochs 60 --patience 5
run ours_at --recipe fast-mf-gowalla --loss-form reference --strategy adap-tau --epochs 60 --patience 5
run ref_fixed --recipe paper-mf-gowalla --strategy fixed --tau 0.1
run ref_a0 --recipe paper-mf-gowalla --strategy adap-tau0
run ref_at --recipe paper-mf-gowalla --strategy adap-tau
run ref_at_late --recipe paper-mf-gowalla --strategy adap-tau --tau-u-start 100
wait
nvidia-smi --query-gpu=name,memory.used --format=csv >> "$out/env.log" 2>&1
