"""Run by tests/test_train.py under torchrun: train, then record this rank's weights and data."""

import hashlib
import json
import sys
from pathlib import Path

from pcavs.train.config import train_preset
from pcavs.train.data import batch_source
from pcavs.train.distributed import init_distributed, shutdown
from pcavs.train.loop import Trainer

data, out, extra = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]  # extra: key=value overrides
cfg = train_preset("tiny-joint", [f"data.root={data}", f"out_dir={out}", "steps=3", "batch_size=2", *extra])
info = init_distributed("cpu")
source = batch_source(cfg, info)
seen = []


def recording(pos):
    for epoch, index, batch in source(pos):
        seen.append([[int(c), int(f[0])] for c, f in zip(batch["clip"], batch["frame"], strict=True)])
        yield epoch, index, batch


trainer = Trainer(cfg, recording, info)
classifier_before = [p.detach().clone() for p in trainer.model.V.fc.parameters()]
trainer.run(progress=False)
classifier_after = list(trainer.model.V.fc.parameters())
classifier_moved = any(not (a == p).all() for a, p in zip(classifier_before, classifier_after, strict=True))
digest = hashlib.sha256()
# parameters only: buffers (BatchNorm statistics, spectral-norm vectors) are rank-local between
# forwards and synced from rank 0 at the next one; rank 0's are the ones saved
for k, v in sorted(trainer.model.named_parameters()):
    digest.update(k.encode() + v.detach().contiguous().numpy().tobytes())
(out / f"rank{info.rank}.json").write_text(json.dumps({"weights": digest.hexdigest(), "samples": seen,
                                                         "classifier_moved": bool(classifier_moved)}))
shutdown(info)
