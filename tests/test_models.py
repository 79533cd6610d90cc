import pytest, torch
from torch import nn
from ganlab.models import MLPGenerator, MLPDiscriminator, build

def test_shapes_and_features():
    G, D = build('mlp', (2,), latent_dim=5, width=16, depth=2)
    x = G(torch.randn(4, 5))
    assert x.shape == (4, 2) and D(x).shape == (4,) and D.features(x).shape == (4, 16)
    assert sum(isinstance(m, nn.Linear) for m in D.modules()) == 3
    assert torch.equal(D(x), D.head(D.features(x)).squeeze(1))

def test_dropout_only_in_training():
    D = MLPDiscriminator(2, (32,), dropout=0.5); x = torch.randn(8, 2)
    D.eval(); assert torch.equal(D(x), D(x))
    D.train(); torch.manual_seed(0); a = D(x); assert not torch.equal(a, D(x))

def test_bad_input_is_named():
    G, D = MLPGenerator(3, 2), MLPDiscriminator(2)
    with pytest.raises(ValueError, match=r'^z: expected shape \(N, 3\), got \(4, 2\)'): G(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r'^x: expected shape \(N, 2\)'): D(torch.randn(4, 3))
    with pytest.raises(ValueError, match='^data_shape: expected flat data'): build('mlp', (1, 28, 28))
    with pytest.raises(KeyError, match='valid names: dcgan, mlp'): build('resnet', (2,))
    with pytest.raises(ValueError, match='^dropout'): MLPDiscriminator(2, dropout=1.0)

from torch import nn
from ganlab.models import DCGANGenerator, DCGANDiscriminator

@pytest.mark.parametrize('size, channels', [(28, 1), (32, 3), (64, 3), (56, 1)])
@pytest.mark.parametrize('upsample', ['transpose', 'pixelshuffle', 'resize'])
def test_dcgan_shapes(size, channels, upsample):
    G, D = DCGANGenerator(16, channels, size, 8, upsample), DCGANDiscriminator(channels, size, 8)
    x = G(torch.randn(2, 16))
    assert x.shape == (2, channels, size, size) and D(x).shape == (2,)
    assert torch.equal(D(x), D.head(D.features(x)).squeeze(1))

from ganlab.models import SubPixelConv, icnr_, dcgan_init
from ganlab.shapes import checkerboard

def _phases_equal(conv_weight: torch.Tensor, scale: int = 2) -> bool:
    "True when the scale² channels PixelShuffle sends to the phases of each output channel hold one kernel."
    phases = conv_weight.view(-1, scale**2, *conv_weight.shape[1:])
    return bool((phases == phases[:, :1]).all())

def test_icnr_copies_one_kernel_to_every_phase():
    weight = torch.empty(4 * 3, 5, 3, 3)
    assert icnr_(weight, 2, std=0.02) is weight and _phases_equal(weight)
    assert not torch.equal(weight[0], weight[4])                        # different output channels differ
    assert abs(weight.std().item() - 0.02) < 0.006
    with pytest.raises(ValueError, match=r'^weight: expected a convolution weight'): icnr_(torch.empty(6, 5, 3, 3), 2)

def test_pixelshuffle_generator_starts_without_checkerboard():
    "Sub-pixel convolution alone is a transposed convolution with four free phases; ICNR makes them equal."
    torch.manual_seed(0)
    G = DCGANGenerator(16, 1, 28, 8, upsample='pixelshuffle')
    sub_pixel = [m for m in G.modules() if isinstance(m, SubPixelConv)]
    assert len(sub_pixel) == 2 and all(m.icnr and _phases_equal(m.conv.weight) for m in sub_pixel)
    assert max(checkerboard(m, m.conv.in_channels) for m in sub_pixel) < 1e-6
    dcgan_init(G)                                                       # re-initialising keeps ICNR
    assert all(_phases_equal(m.conv.weight) for m in sub_pixel)
    random_phases = SubPixelConv(16, 8, icnr=False)
    assert not _phases_equal(random_phases.conv.weight) and checkerboard(random_phases, 16) > 0.5
    transposed = DCGANGenerator(16, 1, 28, 8, upsample='transpose').net[3]
    assert isinstance(transposed, nn.ConvTranspose2d) and checkerboard(transposed, 16) > 0.5
    resize = DCGANGenerator(16, 1, 28, 8, upsample='resize').net[3]
    assert checkerboard(resize, 16) < 1e-6

def test_dcgan_init_follows_the_pytorch_example():
    "Weights N(0, 0.02²) (Radford et al.); batch-norm scales N(1, 0.02²) and shifts 0 (PyTorch's DCGAN example)."
    torch.manual_seed(0)
    G, D = DCGANGenerator(100, 3, 64, 64), DCGANDiscriminator(3, 64, 64)
    norms = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in norms])
    assert abs(scales.mean().item() - 1) < 0.003 and abs(scales.std().item() - 0.02) < 0.002
    assert not torch.cat([m.bias.detach() for m in norms]).any()

def test_transposed_conv_size_formula_in_the_generator():
    "o = (i - 1)s + k - 2p: the 64-pixel generator grows 1 → 4 → 8 → 16 → 32 → 64."
    G, h, sizes = DCGANGenerator(8, 3, 64, 4), torch.randn(1, 8, 1, 1), []
    for m in G.net:
        i = h.shape[-1]; h = m(h)
        if isinstance(m, nn.ConvTranspose2d):
            (k,), (s,), (p,) = m.kernel_size[:1], m.stride[:1], m.padding[:1]
            assert h.shape[-1] == (i - 1) * s + k - 2 * p
            sizes.append(h.shape[-1])
    assert sizes == [4, 8, 16, 32, 64]

def test_dcgan_critic_norms():
    for norm, kind in [('batch', nn.BatchNorm2d), ('layer', nn.GroupNorm)]:
        assert any(isinstance(m, kind) for m in DCGANDiscriminator(1, 28, 8, norm).modules())
    D = DCGANDiscriminator(1, 28, 8, 'none')
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in D.modules())
    # without batch norm, each sample's score is independent of the rest of the batch
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-6)

def test_dcgan_bad_input():
    with pytest.raises(ValueError, match='^size: expected 28, 32, 64'): DCGANGenerator(size=30)
    with pytest.raises(ValueError, match=r'^x: expected shape \(N, 1, 28, 28\)'): DCGANDiscriminator(1, 28, 8)(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match='^norm'): DCGANDiscriminator(norm='instance')
    with pytest.raises(ValueError, match='^upsample'): DCGANGenerator(upsample='nearest')
    with pytest.raises(ValueError, match='^upsample'): build('dcgan', (1, 28, 28), upsample='bilinear')
    with pytest.raises(ValueError, match='^data_shape: expected square images'): build('dcgan', (2,))

from ganlab.models import (ConditionalGenerator, LabelChannelsDiscriminator, ProjectionDiscriminator, TwoHeadDiscriminator,
                           SelfAttention, ConditionalBatchNorm2d)

def test_conditional_generator_concatenates_one_hot_labels():
    base = MLPGenerator(5, 2, (8,)); G = ConditionalGenerator(base, n_classes=3)
    z, y = torch.randn(4, 2), torch.tensor([0, 2, 1, 2])
    assert G.latent_dim == 2 and torch.equal(G(z, y), base(torch.cat([z, torch.eye(3)[y]], 1)))
    with pytest.raises(ValueError, match=r'^y: expected int64 labels of shape \(4,\)'): G(z, y.float())
    with pytest.raises(ValueError, match='^n_classes/n_codes'): ConditionalGenerator(base, 3, 2)

def test_label_channels_for_images_and_points():
    base = DCGANDiscriminator(1 + 4, 28, 8); D = LabelChannelsDiscriminator(base, 4)
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 0])
    planes = torch.zeros(2, 4, 28, 28); planes[0, 3] = 1; planes[1, 0] = 1
    base.eval(); D.eval()
    assert torch.equal(D(x, y), base(torch.cat([x, planes], 1)))

def test_projection_discriminator_formula():
    base = MLPDiscriminator(2, (6,)); D = ProjectionDiscriminator(base, 5)
    x, y = torch.randn(3, 2), torch.tensor([4, 0, 4])
    phi = base.features(x)
    assert torch.allclose(D(x, y), base.head(phi).squeeze(1) + (D.embed.weight[y] * phi).sum(1))

def test_two_heads_share_features_and_return_logits():
    base = MLPDiscriminator(2, (6,)); D = TwoHeadDiscriminator(base, 10)
    s, logits = D(torch.randn(3, 2))
    assert s.shape == (3,) and logits.shape == (3, 10) and not torch.allclose(logits.exp().sum(1), torch.ones(3))

def test_self_attention_starts_as_identity_and_attends_globally():
    sa = SelfAttention(8); x = torch.randn(2, 8, 4, 4)
    assert torch.equal(sa(x), x)
    with torch.no_grad(): sa.gamma.fill_(1.)
    x2 = x.clone(); x2[:, :, 0, 0] += 5                       # change one position...
    assert not torch.allclose(sa(x2)[:, :, 3, 3], sa(x)[:, :, 3, 3])   # ...and the far corner's output changes

def test_conditional_batch_norm_per_class_affine():
    cbn = ConditionalBatchNorm2d(3, 2); x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 1, 0])
    with torch.no_grad(): cbn.gamma.weight[1] = torch.tensor([2., 3., 4.]); cbn.beta.weight[1] = torch.tensor([1., 0., -1.])
    norm = torch.nn.BatchNorm2d(3, affine=False)(x)
    out = cbn(x, y)
    assert torch.allclose(out[0], norm[0], atol=1e-6)
    assert torch.allclose(out[1], norm[1] * torch.tensor([2., 3., 4.])[:, None, None] + torch.tensor([1., 0., -1.])[:, None, None], atol=1e-5)

def test_build_refuses_inconsistent_requests():
    with pytest.raises(ValueError, match='^n_classes: expected the number of classes'): build('mlp', (2,), conditioning='labels')
    with pytest.raises(ValueError, match='^d_output'): build('mlp', (2,), d_output='probability')
    with pytest.raises(ValueError, match='^label_d'): build('mlp', (2,), conditioning='labels', n_classes=3, label_d='film')

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)

@pytest.mark.parametrize('norm', ['layer', 'none'])
def test_dcgan_critic_without_batch_norm_through_build(norm):
    "build('dcgan', shape, norm='layer' | 'none'): D has no batch norm and scores each sample on its own."
    torch.manual_seed(0)
    G, D = build('dcgan', (1, 28, 28), 16, width=8, norm=norm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in D.modules()) == (norm == 'layer')
    assert D.norm == norm
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())        # the generator keeps its batch norm
    x = torch.randn(5, 1, 28, 28)
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-5)
    for variant in (dict(conditioning='labels', n_classes=3), dict(conditioning='labels', n_classes=3, label_d='projection'),
                    dict(conditioning='labels', n_classes=3, d_output='score+classes'), dict(d_output='reconstruction')):
        _, D = build('dcgan', (1, 28, 28), 16, width=8, norm=norm, **variant)
        scorer = D.encoder if variant.get('d_output') == 'reconstruction' else D     # its decoder is a generator
        assert not any(isinstance(m, nn.BatchNorm2d) for m in scorer.modules()), variant

def test_dcgan_default_critic_keeps_batch_norm():
    _, D = build('dcgan', (1, 28, 28), 16, width=8)
    assert D.norm == 'batch' and any(isinstance(m, nn.BatchNorm2d) for m in D.modules())

def test_mlp_discriminator_has_no_norm_unless_asked():
    for G, D in (build('mlp', (2,)), build('mlp', (2,), norm='none')):
        assert D.norm == 'none' and not any(isinstance(m, NORM_LAYERS) for m in D.modules())
    _, D = build('mlp', (2,), width=16, norm='layer')
    assert sum(isinstance(m, nn.LayerNorm) for m in D.modules()) == 3
    x = torch.randn(6, 2)
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-6)
    with pytest.raises(ValueError, match=r"^norm: expected 'none' or 'layer' \(the MLP discriminator has no batch norm\)"):
        build('mlp', (2,), norm='batch')
    with pytest.raises(ValueError, match='^norm'):
        build('dcgan', (1, 28, 28), norm='instance')

def test_mlp_discriminator_without_norm_is_unchanged():
    "norm='none' builds exactly the layers the MLP discriminator always had (Linear, LeakyReLU, ...)."
    D = MLPDiscriminator(2, (8, 8), dropout=0.1)
    assert [type(m) for m in D.body] == [nn.Linear, nn.LeakyReLU, nn.Dropout] * 2
