"""Resume check (issue 24), partial: per stage, an uninterrupted ``pcavs train`` run vs one SIGKILLed at a step
between checkpoints and restarted with the same command; prints max |diff| of the exported weights.

Usage: python benchmarks/resume_matrix.py WORKDIR STAGE KILL_STEP   (30 steps, checkpoint_every=10, size 32)
Not yet covered: SIGTERM, SIGKILL during a checkpoint write, torchrun with a rank killed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

from pcavs.data.dataset import write_synthetic_dataset

root, stage, kill_at, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), 30
data = root / "data"
if not data.exists():
    write_synthetic_dataset(data, num_clips=8, frames=20, size=32)
env = {**os.environ, "OMP_NUM_THREADS": "1"}
def cmd(out):
    return [sys.executable, "-m", "pcavs", "train", "--preset", f"tiny-{stage}", "--data", str(data), "--out", str(out),
            "--quiet", f"steps={steps}", "checkpoint_every=10", "log_every=1"]
a, b = root / f"{stage}-a", root / f"{stage}-b"
subprocess.run(cmd(a), env=env, check=True, capture_output=True)
p = subprocess.Popen(cmd(b), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
log = b / "log.jsonl"
while p.poll() is None:
    if log.exists() and any(json.loads(l)["step"] >= kill_at for l in log.read_text().splitlines() if l.strip()):
        p.send_signal(signal.SIGKILL)
        break
    time.sleep(0.02)
p.wait()
subprocess.run(cmd(b), env=env, check=True, capture_output=True)
wa, wb = load_file(a / "weights/model.safetensors"), load_file(b / "weights/model.safetensors")
print(stage, kill_at, len(wa), max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa))
