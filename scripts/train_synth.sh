#!/usr/bin/env bash
# The CPU recipe: SynthTalk data -> shards -> landmarks, sync, identity and joint training of the `small`
# preset -> loss curves. Each step resumes or skips finished work when run again.
#   DATA=data/synthtalk RUNS=runs/synth-small bash scripts/train_synth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PCAVS=${PCAVS:-.venv/bin/pcavs}
DATA=${DATA:-data/synthtalk}
RUNS=${RUNS:-runs/synth-small}
IDS=${IDS:-200}
WORKERS=${WORKERS:-2}

stamp() { date +%s; }
t0=$(stamp)
$PCAVS synth "$DATA/raw" --identities "$IDS" --clips 3 --seconds 4 --size 128 --seed 0 --workers "$WORKERS"
$PCAVS preprocess "$DATA/raw" "$DATA/shards-64" --size 64 --workers "$WORKERS" --clips-per-shard 32
t1=$(stamp)
$PCAVS train --preset small-landmarks --data "$DATA/shards-64" --out "$RUNS/landmarks" "$@"
$PCAVS train --preset small-sync --data "$DATA/shards-64" --out "$RUNS/sync" --init-from "$RUNS/landmarks/weights" "$@"
$PCAVS train --preset small-identity --data "$DATA/shards-64" --out "$RUNS/identity" --init-from "$RUNS/sync/weights" "$@"
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint" --init-from "$RUNS/identity/weights" "$@"
t2=$(stamp)
.venv/bin/python -c "from pcavs.train.plot import plot_runs; print(plot_runs(['$RUNS/landmarks', '$RUNS/sync', '$RUNS/identity', '$RUNS/joint'], '$RUNS/loss_curves.png'))"
echo "data: $((t1 - t0)) s; training (landmarks + sync + identity + joint): $((t2 - t1)) s; weights: $RUNS/joint/weights"
