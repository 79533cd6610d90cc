"""The `modern` study: DCGAN, progressive growing and StyleGAN-lite on Fashion-MNIST at about equal CPU time,
and the StyleGAN-lite truncation sweep. Read back in nbs/41_stylegan.ipynb.

Run from the repository root, on one CPU thread (the step budgets were measured so):
    OMP_NUM_THREADS=1 python data/benchmarks/modern/run.py             # the study: results.json
    OMP_NUM_THREADS=1 python data/benchmarks/modern/run.py truncation  # the sweep: truncation.json
Both parts resume from their results files (results.json, truncation.json) if interrupted. The kept
stylegan-seed*/checkpoint.pt files were stripped to the step and the generator after the sweep (the
notebook needs nothing else), to keep the repository small.

Equal wall-clock budget: each method's steps are its measured seconds per step on one thread divided
into the same budget (about 90 s: DCGAN 0.116 s/step; progressive, width 8, about 0.29 s/step averaged
over its five phases, 400 steps; StyleGAN-lite, width 32, 0.41 s/step); every run's seconds are stored with it.
(The study lives here, not in ganlab.stylegan: ganlab.studies imports the trainer, which imports
ganlab.stylegan, so the module may not import the studies.)"""
import sys
import torch
from ganlab.core import check

# Optimisers: DCGAN's (the loss's defaults: Adam, lr 2e-4, betas (0.5, 0.999)); PGGAN's for the
# progressive networks (lr 1e-3, betas (0, 0.99): with equalized learning rate every weight has scale 1,
# so a step of 2e-4 moves a layer 50 times less, relatively, than in a DCGAN initialised at N(0, 0.02²));
# StyleGAN's for its generator (lr 1e-3, betas (0, 0.99)) with the DCGAN discriminator kept at 2e-4.
MODERN_METHODS = {
    'DCGAN': dict(arch='dcgan', width=32, steps=800),
    'progressive': dict(arch='progressive', game='progressive', width=8, steps=400, lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99)),
    'StyleGAN-lite': dict(arch='stylegan', width=32, steps=230, lr_g=1e-3, lr_d=2e-4, betas=(0.0, 0.99)),
}


def modern_study():
    """The `modern` study (registered in `ganlab.studies.studies` on first call): DCGAN, progressive growing
    and StyleGAN-lite on Fashion-MNIST at about equal CPU time, each method with its own `steps` (scaled
    together by a study-wide `--steps`: a method runs steps·s/800 for s the study's steps)."""
    import dataclasses
    from ganlab.studies import Study, studies, TrainConfig

    class EqualBudgetStudy(Study):
        "A study whose methods carry their own step counts, scaled by `steps / self.steps`."

        def config(self, method, data, seed, steps=None):
            check(method in self.methods, 'method', f'one of {list(self.methods)}', method)
            kw = {**self.base, **self.methods[method]}
            own = kw.pop('steps')
            scaled = max(round(own * (steps or self.steps) / self.steps), 1)
            return TrainConfig(data=data, seed=seed, steps=scaled, diagnostics=False, **kw)

    if 'modern' not in studies:
        study = EqualBudgetStudy(
            'modern',
            'DCGAN, progressive growing and StyleGAN-lite on Fashion-MNIST at about equal CPU time',
            datasets=('fashion-mnist',),
            base=dict(loss='nsgan', batch_size=64),
            methods=MODERN_METHODS,
            seeds=(0, 1),
            steps=800,
            eval_samples=2000,
        )
        studies.register('modern')(study)
    return studies['modern']

def truncation_sweep(out, seeds=(0, 1), psis=(0.25, 0.5, 0.75, 1.0), samples: int = 2000, log=print) -> dict:
    """Train the `modern` study's StyleGAN-lite run for each seed into `out/stylegan-seed{seed}` (kept,
    resumable) and score its generator at each truncation ψ (FID, KID, precision, recall through the
    Fashion-MNIST evaluator); results appended to `out/truncation.json` after each (seed, ψ)."""
    import dataclasses, json
    from pathlib import Path
    from ganlab.core import atomic_write_text
    from ganlab.train import train
    from ganlab import evaluation as E
    from ganlab.evaluators import load_evaluator, reference_statistics
    from ganlab import data as gdata

    study = modern_study()
    out = Path(out)
    path = out / 'truncation.json'
    results = json.loads(path.read_text()) if path.exists() else dict(samples=samples, runs=[])
    done = {(r['seed'], r['psi']) for r in results['runs']}
    for seed in seeds:
        cfg = study.config('StyleGAN-lite', 'fashion-mnist', seed)
        cfg = dataclasses.replace(cfg, checkpoint_every=cfg.steps, log_every=max(cfg.steps // 20, 1))
        run = out / f'stylegan-seed{seed}'
        if not (run / 'metrics.json').exists():
            summary = train(cfg, out=run, progress=False, overwrite=True)
            results.setdefault('seconds', {})[str(seed)] = summary['seconds']
        state = torch.load(run / 'checkpoint.pt', map_location='cpu', weights_only=False)
        config = json.loads((run / 'config.json').read_text())
        data = gdata.load('fashion-mnist', split='train', download=False)
        G, _, _ = E._rebuild_generator(config, state, data, ema=False)
        G.eval()
        evaluator = load_evaluator('fashion-mnist', 'cpu')
        reference = reference_statistics('fashion-mnist', 'train')
        for psi in psis:
            if (seed, psi) in done:
                continue
            G.psi = psi
            with torch.no_grad():
                m = E.image_metrics(evaluator, E._sampler(G, None, 1234, 'cpu'), data, reference, samples, samples)
            row = dict(seed=seed, psi=psi, **{k: m[k] for k in ('fid', 'kid', 'precision', 'recall', 'density', 'coverage')})
            results['runs'].append(row)
            log(f"seed {seed} ψ={psi}: " + ', '.join(f'{k} {v:.3f}' for k, v in row.items() if isinstance(v, float)))
            atomic_write_text(path, json.dumps(results, indent=1))
    return results


OUT = 'data/benchmarks/modern'
COMMAND = 'OMP_NUM_THREADS=1 python data/benchmarks/modern/run.py'
if __name__ == '__main__':
    torch.set_num_threads(1)
    from ganlab.studies import run_study

    if sys.argv[1:] == ['truncation']:
        truncation_sweep(OUT)
    else:
        run_study(modern_study(), OUT, command=COMMAND)
