import gzip, math, os
import numpy as np, pytest, torch
from ganlab import data
from ganlab.data import GaussianMixture, gaussian, ring, grid, read_idx, IDXError, ImageTensors, to_unit_range, to_uint8, load
from conftest import load_or_skip
scipy_stats = pytest.importorskip('scipy.stats')

def test_ring_and_grid_follow_the_pacgan_definition():
    r = ring()
    assert r.n_modes == 8 and r.std == 0.01
    assert torch.allclose(r.centers.norm(dim=1), torch.ones(8, dtype=torch.float64))
    angles = torch.atan2(r.centers[:, 1], r.centers[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8, dtype=torch.float64) * math.pi / 4, atol=1e-12)
    g = grid()
    assert g.n_modes == 25 and g.std == 0.05
    assert sorted({tuple(c) for c in g.centers.tolist()}) == sorted((x, y) for x in (-4., -2., 0., 2., 4.) for y in (-4., -2., 0., 2., 4.))

@pytest.mark.parametrize('mix', [ring(), grid(), GaussianMixture([-2., 2.], [0.5, 1.], [0.3, 0.7])], ids=['ring', 'grid', 'bimodal'])
def test_samples_match_their_definition(mix):
    n = 100_000
    x, k = mix.sample(n, generator=torch.Generator().manual_seed(1))
    assert x.dtype == torch.float32 and x.shape == (n, mix.dim) and k.shape == (n,)
    for j in range(mix.n_modes):
        xj = x[k == j].double()
        se = mix.stds[j] / math.sqrt(len(xj))
        assert ((xj.mean(0) - mix.means[j]).abs() < 5 * se).all()
        # each coordinate of a component is N(mu, std^2): Kolmogorov-Smirnov against scipy's normal cdf
        z = ((xj[:, 0] - mix.means[j, 0]) / mix.stds[j]).numpy()
        assert scipy_stats.kstest(z, 'norm').pvalue > 1e-4
    counts = torch.bincount(k, minlength=mix.n_modes).double() / n
    assert ((counts - mix.weights).abs() < 5 * (mix.weights * (1 - mix.weights) / n).sqrt()).all()

def test_sampling_is_seeded():
    a = ring().sample(10, generator=torch.Generator().manual_seed(3))[0]
    b = ring().sample(10, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)

def test_log_prob_against_scipy():
    mix = GaussianMixture([-2., 0.5, 3.], [0.5, 1., 2.], [0.2, 0.5, 0.3])
    xs = np.linspace(-40, 40, 801)
    expected = np.log(sum(w * scipy_stats.norm(m, s).pdf(xs) for m, s, w in [(-2, .5, .2), (.5, 1, .5), (3, 2, .3)]))
    got = mix.log_prob(torch.tensor(xs)).numpy()
    finite = np.isfinite(expected)                 # scipy underflows far out; logsumexp does not
    assert np.allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-10) and np.isfinite(got).all()
    g2 = grid()
    pts = torch.tensor([[0.1, -0.2], [4.0, 4.0]], dtype=torch.float64)
    exp2 = np.log(sum(scipy_stats.multivariate_normal(c.numpy(), 0.05**2).pdf(pts.numpy()) for c in g2.centers) / 25)
    assert np.allclose(g2.log_prob(pts).numpy(), exp2, rtol=1e-10)
    assert torch.allclose(gaussian(1, 2).pdf(torch.tensor([1.])), torch.tensor([1 / math.sqrt(2 * math.pi * 4)], dtype=torch.float64))

@pytest.mark.parametrize('kwargs, arg', [(dict(means=[0.], stds=[-1.]), 'stds'), (dict(means=[0., 1.], stds=1., weights=[.5, .6]), 'weights'),
                                         (dict(means=torch.zeros(2, 2, 2), stds=1.), 'means')])
def test_mixture_rejects_bad_parameters(kwargs, arg):
    with pytest.raises(ValueError, match=f'^{arg}: expected'): GaussianMixture(**kwargs)

def test_mixture_rejects_bad_calls():
    with pytest.raises(ValueError, match='^n: expected a positive integer'): ring().sample(0)
    with pytest.raises(ValueError, match=r'^x: expected shape \(N, 2\)'): ring().log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match='^std: expected a mixture with one common std'): GaussianMixture([0., 1.], [1., 2.]).std

def test_unit_range_and_back():
    u8 = torch.arange(256, dtype=torch.uint8)
    f = to_unit_range(u8)
    assert f.min() == -1 and f.max() == 1 and torch.equal(to_uint8(f), u8)
    with pytest.raises(ValueError, match='^images: expected a uint8 tensor'): to_unit_range(f)

def test_image_tensors_sample_and_validate():
    ds = ImageTensors(torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8), torch.arange(10))
    x, y = ds.sample(6, generator=torch.Generator().manual_seed(0))
    assert x.shape == (6, 1, 4, 4) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert torch.equal(to_uint8(x), ds.images[y])          # labels are the indices here: images match
    item, label = ds[3]
    assert torch.equal(item, to_unit_range(ds.images[3])) and label == 3
    with pytest.raises(ValueError, match='^labels: expected shape'): ImageTensors(ds.images, torch.arange(9))
    with pytest.raises(ValueError, match='^images: expected a uint8 tensor'): ImageTensors(ds.images.float(), ds.labels)

def idx_bytes(arr, type_code=0x08):
    return bytes([0, 0, type_code, arr.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in arr.shape) + arr.tobytes()

@pytest.mark.parametrize('dtype, code', [(np.uint8, 0x08), (np.dtype('>i4'), 0x0C), (np.dtype('>f4'), 0x0D)])
def test_read_idx_round_trip(tmp_path, dtype, code):
    arr = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    (tmp_path/'x.gz').write_bytes(gzip.compress(idx_bytes(arr, code)))
    (tmp_path/'x').write_bytes(idx_bytes(arr, code))
    for p in ('x.gz', 'x'):
        t = read_idx(tmp_path/p)
        assert t.shape == (2, 3, 4) and np.array_equal(t.numpy(), arr.astype(arr.dtype.newbyteorder('=')))

def test_read_idx_reports_truncation_and_corruption(tmp_path):
    blob = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    (tmp_path/'cut').write_bytes(blob[:-100])
    with pytest.raises(IDXError, match=r'truncated: its header promises shape \(5, 28, 28\) = 3920 bytes of data, found 3820'):
        read_idx(tmp_path/'cut')
    (tmp_path/'long').write_bytes(blob + b'xx')
    with pytest.raises(IDXError, match='trailing bytes'): read_idx(tmp_path/'long')
    gz = gzip.compress(blob)
    (tmp_path/'cut.gz').write_bytes(gz[:len(gz) // 2])
    with pytest.raises(IDXError, match='corrupt or truncated gzip'): read_idx(tmp_path/'cut.gz')
    (tmp_path/'junk').write_bytes(b'PK\x03\x04 not idx')
    with pytest.raises(IDXError, match='not an IDX file'): read_idx(tmp_path/'junk')
    (tmp_path/'head').write_bytes(blob[:9])
    with pytest.raises(IDXError, match='truncated IDX header'): read_idx(tmp_path/'head')

def write_fake_mnist(folder, n=7, prefix='t10k', gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    imgs = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for kind, arr in (('images-idx3', imgs), ('labels-idx1', labels)):
        b = idx_bytes(arr); name = f'{prefix}-{kind}-ubyte'
        (folder/(name + '.gz' if gz else name)).write_bytes(gzip.compress(b) if gz else b)
    return imgs, labels

@pytest.mark.parametrize('layout', ['torchvision', 'flat'])
def test_root_search_finds_both_layouts(tmp_path, monkeypatch, layout):
    sub = tmp_path/('FashionMNIST/raw' if layout == 'torchvision' else 'fashion-mnist')
    imgs, labels = write_fake_mnist(sub, gz=layout == 'flat')
    monkeypatch.setenv('GANLAB_DATA', str(tmp_path))
    ds = load('fashion-mnist', split='test', download=False)
    assert ds.shape == (1, 28, 28) and torch.equal(ds.images[:, 0], torch.from_numpy(imgs)) and ds.labels.tolist() == labels.tolist()
    assert ds.classes[0] == 'T-shirt/top'

def test_root_order_explicit_then_env(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path/'a'/'MNIST'/'raw', n=3); write_fake_mnist(tmp_path/'b'/'MNIST'/'raw', n=5)
    monkeypatch.setenv('GANLAB_DATA', str(tmp_path/'b'))
    assert len(load('mnist', split='test', download=False)) == 5
    assert len(load('mnist', split='test', root=tmp_path/'a', download=False)) == 3
    assert data.data_roots()[0] == tmp_path/'b' and data.data_roots(tmp_path/'a') == [tmp_path/'a']

def test_missing_files_name_paths_and_commands(tmp_path, monkeypatch):
    monkeypatch.setenv('GANLAB_DATA', str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e: data._load_idx_set('fashion_mnist', 'train', root=tmp_path/'nowhere', download=False)
    msg = str(e.value)
    assert 'train-images-idx3-ubyte[.gz]' in msg and str(tmp_path/'nowhere'/'FashionMNIST'/'raw') in msg
    assert 'apt-get install dataset-fashion-mnist' in msg and 'download=True' in msg

def test_unknown_names_and_splits():
    with pytest.raises(KeyError, match="unknown dataset 'imagenet'; valid names: ") as e: load('imagenet')
    # every built-in set is listed (chapters register more, e.g. the translation pairs)
    assert all(name in str(e.value) for name in ('celeba', 'cifar10', 'fashion_mnist', 'grid25', 'mnist', 'ring8', 'stacked_mnist'))
    with pytest.raises(ValueError, match="^split: expected 'train' or 'test'"): load('mnist', split='validation', download=False)

def test_mnist_test_split():
    ds = load_or_skip('mnist', split='test')
    assert len(ds) == 10_000 and ds.shape == (1, 28, 28) and ds.labels.bincount().tolist()[:3] == [980, 1135, 1032]
    x, _ = ds.sample(64, generator=torch.Generator().manual_seed(0))
    assert x.min() == -1 and x.max() == 1

def test_fashion_mnist_both_splits():
    train, test = load_or_skip('fashion-mnist', split='train'), load_or_skip('fashion-mnist', split='test')
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.labels.bincount().tolist() == [6000] * 10 and test.labels.bincount().tolist() == [1000] * 10

def test_stacked_mnist():
    mnist = load_or_skip('mnist', split='test')
    sm = data.stacked_mnist(2000, split='test', download=False, seed=5)
    assert sm.shape == (3, 28, 28) and len(sm) == 2000 and sm.labels.max() < 1000
    idx = torch.randint(len(mnist), (2000, 3), generator=torch.Generator().manual_seed(5))
    d = mnist.labels[idx]
    assert torch.equal(sm.labels, 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2])
    assert torch.equal(sm.images[:, 1], mnist.images[idx[:, 1], 0])
    assert torch.equal(data.stacked_mnist(2000, split='test', download=False, seed=5).images, sm.images)
    assert len(sm.labels.unique()) > 850       # 2000 draws over 1000 equally likely modes cover ~865

def test_offline_download_failure_is_explained(tmp_path, monkeypatch):
    "Offline, the download attempt fails and the error still names the paths and commands."
    import torchvision
    def refuse(*a, **k): raise RuntimeError('Error downloading: <urlopen error [Errno -2] Name or service not known>')
    monkeypatch.setattr(torchvision.datasets, 'MNIST', refuse)
    with pytest.raises(FileNotFoundError, match="download failed: Error downloading.*To get it"):
        data._load_idx_set('mnist', 'train', root=tmp_path, download=True)
    monkeypatch.setattr(torchvision.datasets, 'CIFAR10', refuse)
    with pytest.raises(FileNotFoundError, match="cifar10 not found .*download=True"): load('cifar10', root=tmp_path)
