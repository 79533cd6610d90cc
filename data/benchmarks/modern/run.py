"""The `modern` study and the StyleGAN-lite truncation sweep (see nbs/41_stylegan.ipynb and nbs/42_modern_study.ipynb).

Run from the repository root, on one CPU thread (the step budgets were measured so):
    OMP_NUM_THREADS=1 python data/benchmarks/modern/run.py
Both parts resume from their results files if interrupted."""
import sys
import torch

torch.set_num_threads(1)
from ganlab.stylegan import modern_study, truncation_sweep
from ganlab.studies import run_study

OUT = 'data/benchmarks/modern'
COMMAND = 'OMP_NUM_THREADS=1 python data/benchmarks/modern/run.py'
if __name__ == '__main__':
    run_study(modern_study(), OUT, command=COMMAND)
    truncation_sweep(OUT)
