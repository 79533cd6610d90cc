import os, pytest, torch
from ganlab import data

# Under pytest-xdist each worker is one process on a shared CPU: one torch thread each, or the workers'
# OpenMP threads oversubscribe the cores and small-model training slows down many-fold.
if os.environ.get('PYTEST_XDIST_WORKER'): torch.set_num_threads(1)

def load_or_skip(name, **kwargs):
    """Load a data set; skip the test when its files are missing, unless GANLAB_REQUIRE_DATA=1 (CI sets it),
    where a missing file is a failure: CI must not pass by skipping."""
    try: return data.load(name, download=False, **kwargs)
    except FileNotFoundError as e:
        if os.environ.get('GANLAB_REQUIRE_DATA') == '1': raise
        pytest.skip(str(e))
