# SPDX-License-Identifier: GPL-2.0-or-later
"""SharedArray code inside a real --shm job, changed by one line
(`import jobshm.sharedarray as SharedArray`): shm://KEY is /dev/shm/KEY
in the job, every task of the job on the node shares it, nobody outside
the job sees it, and it goes with the job."""
import os

import numpy as np
from conftest import (BASE, OUT, ROOT, assert_clean, sbatch, wait_done,
                      wait_file)

PY = f"PYTHONPATH={ROOT}/python /usr/bin/python3"


def test_sharedarray_code_runs_unchanged_in_a_job():
    go = OUT / "sharedarray.go"
    go.unlink(missing_ok=True)
    jobid, out = sbatch(["-N1", "-n2", "--mem=1G", "--shm=64M"], f"""
T=$(mktemp -d)
cat > $T/task.py <<'EOT'
import os
import numpy as np
import jobshm.sharedarray as SharedArray
key = "sa_key"
rank = int(os.environ["SLURM_PROCID"])
print("TASK", rank, "EXISTS", os.path.exists("/dev/shm/" + key), flush=True)
a = SharedArray.attach("shm://" + key)
a[rank] = np.arange(8) + 100 * (rank + 1)
EOT
{PY} - <<'EOT'
import os
import jobshm.sharedarray as SharedArray
key = "sa_key"
a = SharedArray.create("shm://" + key, (2, 8), dtype="int64")
print("EXISTS", os.path.exists("/dev/shm/" + key))
print("LIST", [d.name.decode() for d in SharedArray.list()])
EOT
srun -n2 env {PY} $T/task.py
echo SRUN rc=$?
{PY} - <<'EOT'
import jobshm.sharedarray as SharedArray
a = SharedArray.attach("sa_key", ro=True)
print("ROWS", a[0].sum(), a[1].sum())
EOT
echo WAITING
for i in $(seq 300); do [ -e {go} ] && break; sleep 0.1; done
{PY} -c 'import jobshm.sharedarray as S; S.delete("sa_key"); print("LEFT", S.list())'
rm -rf $T
""", name="sharedarray")
    try:
        text = wait_file(out, "WAITING", timeout=120)
        # the array is in the job's own tmpfs, not in the node's /dev/shm
        assert not os.path.exists("/dev/shm/sa_key"), text
        held = list(BASE.glob(f"*/{jobid}/sa_key"))
        assert len(held) == 1 and held[0].stat().st_size == \
            2 * 8 * 8 + 36 + 8 * getattr(np, "MAXDIMS", 64), held
    finally:
        go.touch()
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    text = out.read_text()
    assert "EXISTS True" in text and "LIST ['sa_key']" in text, text
    assert "TASK 0 EXISTS True" in text and "TASK 1 EXISTS True" in text, text
    assert "SRUN rc=0" in text, text
    assert f"ROWS {28 + 800} {28 + 1600}" in text, text
    assert "LEFT ()" in text, text
    go.unlink(missing_ok=True)
    assert_clean(jobid)
