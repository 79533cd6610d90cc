import pytest, torch
from ganlab.models import MLPGenerator, MLPDiscriminator, build

def test_shapes_and_features():
    G, D = build('mlp', (2,), latent_dim=5, hidden=(16, 8))
    x = G(torch.randn(4, 5))
    assert x.shape == (4, 2) and D(x).shape == (4,) and D.features(x).shape == (4, 8)
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
    with pytest.raises(KeyError, match='valid names: mlp'): build('resnet', (2,))
    with pytest.raises(ValueError, match='^dropout'): MLPDiscriminator(2, dropout=1.0)
