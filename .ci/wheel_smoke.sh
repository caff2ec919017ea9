#!/usr/bin/env bash
# Build the wheel, install it into a clean virtual environment (no checkout on the path) and
# run the quick start and the pretrained model from outside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip wheel -q --no-deps -w "$work/dist" .
python3 -m venv "$work/env"
# torch==2.13.0 is pinned on these machines (a local CPU build); elsewhere any torch>=2.0 works.
"$work/env/bin/pip" install -q torch==2.13.0 "$work"/dist/linkage_gcn-*.whl
cd "$work"
LFW="$root/../shared/data/lfw-dlib" OMP_NUM_THREADS=1 "$work/env/bin/python" - <<'PY'
import os
import pathlib

import numpy as np

import linkage_gcn
from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import make_identities, split_identities
from linkage_gcn.metrics import bcubed_fscore

where = pathlib.Path(linkage_gcn.__file__).resolve()
assert "site-packages" in where.parts, f"imported from the checkout: {where}"
print(f"linkage-gcn {linkage_gcn.__version__} from {where.parent}")

# the quick start, sized down
X, y = make_identities(60, max_size=15, random_state=0)
train, test = split_identities(y, random_state=0)
est = LinkageClusterer(k_at_hop=(6, 3), active_connection=3, hidden_channels=(16, 16),
                       epochs=1, random_state=0, threads=1, verbose=False)
labels = est.fit(X[train], y[train]).predict(X[test])
print(f"quick start: {len(np.unique(labels))} clusters, B-Cubed F "
      f"{bcubed_fscore(y[test], labels)[2]:.3f}")

# the pretrained model, from the wheel's own file, on raw dlib descriptors
pre = LinkageClusterer.pretrained("dlib-128", threads=1, verbose=False)
lfw = pathlib.Path(os.environ["LFW"])
if (lfw / "test" / "features_raw.npy").exists():
    Xf = np.load(lfw / "test" / "features_raw.npy")[:1000]
    yf = np.load(lfw / "test" / "labels.npy")[:1000]
    f = bcubed_fscore(yf, pre.predict(Xf))[2]
    print(f"pretrained dlib-128 on 1,000 LFW faces (seen in training): B-Cubed F {f:.3f}")
    assert f > 0.9
else:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 128))
    Xs = (centres[rng.integers(0, 20, 200)] + 0.05 * rng.normal(size=(200, 128)))
    Xs = (1.42 * Xs / np.linalg.norm(Xs, axis=1, keepdims=True)).astype(np.float32)
    print(f"pretrained dlib-128 on synthetic descriptors: "
          f"{len(np.unique(pre.predict(Xs)))} clusters")
PY
"$work/env/bin/linkage-gcn" --help > /dev/null
echo "wheel smoke test passed"
