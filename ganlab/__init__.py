"""A literate course on generative adversarial networks, with the tested package its notebooks export

Modules:

- `ganlab.divergences`: How far apart are two distributions? The Kullback-Leibler and Jensen-Shannon divergences, their properties proved and checked, and what each one does when it is the thing being minimised.
- `ganlab.evaluation`: FID in one call, every image metric at once, Stacked MNIST's modes, and `ganlab-eval`, the command that scores a run folder.
- `ganlab.evaluators`: Small classifiers trained here for MNIST and Fashion-MNIST, features streamed out of generators in batches, reference statistics of real data, and the Inception-v3 path.
- `ganlab.grading`: The labs' autograder: `ganlab-assign` turns a lab with solutions into the student version, and `ganlab-grade` runs a submission's functions in a bubblewrap sandbox and scores them against the reference solution on freshly drawn inputs; results are written by the grader alone.
- `ganlab.latent`: Interpolate between latents (lerp and slerp), do DCGAN's vector arithmetic on averaged exemplars, steer a sample toward a class along a classifier's gradient, and measure how disentangled InfoGAN's code is.
- `ganlab.likelihood`: Estimating log p(x) of a latent-variable model by Monte Carlo, the Parzen-window estimate that ranks a visibly broken sampler above a perfect one, why Gaussian decoders blur, and how GANs, VAEs and diffusion models compare.
- `ganlab.metrics`: Numbers that say how good and how varied a generator's samples are: mode counts, Inception Score, FID, KID, precision and recall, density and coverage.
- `ganlab.minimax`: What a GAN optimises, derived from scratch: the value V(D, G), its optimal discriminator, the Jensen-Shannon divergence hiding inside it, its equilibrium, and why the generator's loss is usually flipped.
- `ganlab.outputs`: Every chapter is committed executed, so that a student can read the course without running it. This chapter, for maintainers, makes those outputs and checks in CI that none is stale.
- `ganlab.sagan`: Self-attention, conditional batch norm, a projection discriminator, spectral norm and the hinge loss in one class-conditional model for Fashion-MNIST, trained by `ganlab-train`, and measured against the CGAN baseline at equal budget.
- `ganlab.sandbox`: Every process that runs submitted code (the reference too) runs inside bubblewrap: new user, pid, mount, network, IPC and UTS namespaces, an unprivileged uid, a read-only view of the interpreter and its packages, a private size-limited tmpfs, seccomp and rlimits; data in, checked data out.
- `ganlab.shapes`: The output size o = (i − 1)·s + k − 2p, derived twice and checked against PyTorch over hundreds of settings; why the layer is called "transposed"; and where checkerboard artefacts come from.
- `ganlab.translation`: A generator that maps an image to an image: trained on pairs with a conditional GAN plus an L1 term (pix2pix, Isola et al. 2017), or on two unpaired collections with two GANs tied by cycle consistency (CycleGAN, Zhu et al. 2017).
- `ganlab.transport`: When the supports are disjoint, KL and JS say nothing useful; the earth mover's distance still measures how far apart two distributions are. Its primal and dual problems, solved exactly, and the neural critics that approximate it.
- `ganlab.tricks`: One-sided label smoothing, noisy and flipped labels, instance noise, differentiable augmentation, PacGAN's packing, and the balance of D and G (n_critic, TTUR, dropout)."""

__version__ = "0.1.0"
