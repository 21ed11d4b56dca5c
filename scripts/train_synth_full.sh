#!/usr/bin/env bash
# The long CPU recipe: scripts/train_synth.sh (data and the four stages from scratch: 1820 s of training
# measured on an idle 2-core AVX2 EPYC, two threads), then 8000 more landmark steps (the FAN's landmarks
# carry the head's pitch: 1.75 -> 0.63 px here), then a 3000-step joint pass (lr decayed to 0 over the last
# 1500) with half the identity frames from another clip of the same person, then three joint passes with all
# of them from another clip and loss.pose_geometry=30: 3000 steps (decayed over the last 1500), then 1500
# twice (over the last 750). Its output is the built-in model (SynthTalk rows in the README), made with one
# thread while the other core ran other work: 11833 s of training. On an idle machine with both cores the
# stages' measured throughput gives about 1.8 h (README, SynthTalk). Every step resumes when run again:
# start it in the background and rerun the same command after an interruption. Torch uses every core; on a
# machine busy with other work set OMP_NUM_THREADS=1 (there one thread ran 3.5x faster than two).
#   nohup make train-synth-full > train-synth-full.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PCAVS=${PCAVS:-.venv/bin/pcavs}
DATA=${DATA:-data/synthtalk}
RUNS=${RUNS:-runs/synth-small}
DATA=$DATA RUNS=$RUNS bash scripts/train_synth.sh "$@"
$PCAVS train --preset small-landmarks --data "$DATA/shards-64" --out "$RUNS/landmarks2" --init-from "$RUNS/joint/weights" \
    steps=8000 optim.decay_steps=4000 "$@"
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint2" --init-from "$RUNS/landmarks2/weights" \
    steps=3000 optim.decay_steps=1500 data.reference_other_clip=0.5 "$@"
# the pose code follows the target's landmark geometry (loss.pose_geometry) in the last three passes
PG="data.reference_other_clip=1.0 loss.pose_geometry=30"
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint3pg" --init-from "$RUNS/joint2/weights" \
    steps=3000 optim.decay_steps=1500 $PG "$@"
prev=joint3pg
for run in joint4pg joint5pg; do
    $PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/$run" --init-from "$RUNS/$prev/weights" \
        steps=1500 optim.decay_steps=750 $PG "$@"
    prev=$run
done
.venv/bin/python -c "from pcavs.train.plot import plot_runs; print(plot_runs(['$RUNS/landmarks', '$RUNS/sync', '$RUNS/identity', '$RUNS/joint', '$RUNS/landmarks2', '$RUNS/joint2', '$RUNS/joint3pg', '$RUNS/joint4pg', '$RUNS/joint5pg'], '$RUNS/loss_curves_full.png'))"
echo "weights: $RUNS/joint5pg/weights"
