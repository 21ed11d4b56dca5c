#!/usr/bin/env bash
# How the fine-tuned model (built in until make train-synth-full's output replaced it) was moved to the
# official clip crop (issue 17): the previous built-in
# model (trained on levelled crops by scripts/train_synth.sh) fine-tuned on SynthTalk shards cropped the
# clip way: 300 landmark steps (the FAN now sees rolled and zoomed crops), then 1200 joint steps with the
# lr decayed to 0 over the last 600, then a second joint pass of 1400 steps decayed over the last 700
# (SSIM gain 0.112 -> 0.117, pose ratio 0.595 -> 0.582), then a third of 2200 steps decayed over the last
# 1100 (SSIM gain 0.117 -> 0.133, pose ratio 0.582 -> 0.541; 2025 s of training on a shared machine,
# stopped twice by SIGTERM before the decay began and resumed with the final schedule), then two passes
# of 3000 steps decayed over the last 1500 with identity frames from another clip of the same person,
# half of them and then all (pose ratio 0.541 -> 0.489 -> 0.475, roll motion 0.611 -> 0.454 -> 0.411,
# SSIM gain 0.133 -> 0.154 -> 0.163; 2584 s and 2721 s), then 8000 landmark steps decayed over the last
# 4000 (the FAN's landmark error on the clip crops 1.42 -> 0.58 px; 1401 s) and a 3000-step joint pass at
# 1.0 (2763 s; pose 4.59 -> 4.46 deg, roll motion 1.05 -> 0.87, SSIM gain 0.163 -> 0.173), then two joint
# passes with loss.pose_geometry 10 (3000 steps, 2488 s) and 30 (1500 steps, 1153 s): pose 4.46 -> 4.32 -> 4.24
# deg, pitch 5.30 -> 4.94 -> 4.79, SSIM gain 0.173 -> 0.179 -> 0.181. Run from a
# checkout whose pcavs/assets/weights/synthtalk-small is the levelled-crop model (git show
# 1f69f0c:pcavs/assets/weights/synthtalk-small/...), or pass INIT.
#   DATA=data/synthtalk RUNS=runs/clip INIT=path/to/previous/weights bash scripts/finetune_synth_clip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PCAVS=${PCAVS:-.venv/bin/pcavs}
DATA=${DATA:-data/synthtalk}
RUNS=${RUNS:-runs/clip}
INIT=${INIT:-pcavs/assets/weights/synthtalk-small}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # on a loaded 2-core machine one thread was 3.5x faster
$PCAVS synth "$DATA/raw" --identities 200 --clips 3 --seconds 4 --size 128 --seed 0 --workers 2
$PCAVS preprocess "$DATA/raw" "$DATA/shards-64" --size 64 --workers 2 --clips-per-shard 32
$PCAVS train --preset small-landmarks --data "$DATA/shards-64" --out "$RUNS/landmarks" --init-from "$INIT" steps=300
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint" --init-from "$RUNS/landmarks/weights" \
    steps=1200 optim.decay_steps=600
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint2" --init-from "$RUNS/joint/weights" \
    steps=1400 optim.decay_steps=700
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint3" --init-from "$RUNS/joint2/weights" \
    steps=2200 optim.decay_steps=1100
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint4" --init-from "$RUNS/joint3/weights" \
    steps=3000 optim.decay_steps=1500 data.reference_other_clip=0.5
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint5" --init-from "$RUNS/joint4/weights" \
    steps=3000 optim.decay_steps=1500 data.reference_other_clip=1.0
$PCAVS train --preset small-landmarks --data "$DATA/shards-64" --out "$RUNS/landmarks2" --init-from "$RUNS/joint5/weights" \
    steps=8000 optim.decay_steps=4000
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint6" --init-from "$RUNS/landmarks2/weights" \
    steps=3000 optim.decay_steps=1500 data.reference_other_clip=1.0
# the pose code follows the target's landmark geometry (loss.pose_geometry): its pitch read-out per clip
# 2.75 -> 1.88 -> 1.78 deg, SynthTalk pose 4.46 -> 4.32 -> 4.24 deg
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint7" --init-from "$RUNS/joint6/weights" \
    steps=3000 optim.decay_steps=1500 data.reference_other_clip=1.0 loss.pose_geometry=10
$PCAVS train --preset small-joint --data "$DATA/shards-64" --out "$RUNS/joint8" --init-from "$RUNS/joint7/weights" \
    steps=1500 optim.decay_steps=750 data.reference_other_clip=1.0 loss.pose_geometry=30
