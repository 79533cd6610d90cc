"Tests for ganlab.shapes: convolution and transposed-convolution output sizes, against PyTorch."
import itertools
import pytest
import torch
from torch import nn
from ganlab.shapes import conv_output_size, conv_transpose_output_size


def torch_size(layer, i):
    try:
        with torch.no_grad(): return layer(torch.zeros(1, 1, i, 2)).shape[2]
    except RuntimeError: return None


def ours(f, *args):
    try: return f(*args)
    except ValueError: return None


@pytest.mark.parametrize('s', [1, 2, 3])
def test_transposed_size_matches_pytorch(s):
    for i, k, p, d in itertools.product(range(1, 7), range(1, 6), range(0, 4), (1, 2)):
        for op in range(max(s, d)):
            layer = nn.ConvTranspose2d(1, 1, (k, 1), stride=(s, 1), padding=(p, 0), output_padding=(op, 0), dilation=(d, 1))
            assert ours(conv_transpose_output_size, i, k, s, p, op, d) == torch_size(layer, i), (i, k, s, p, op, d)


@pytest.mark.parametrize('s', [1, 2, 3])
def test_conv_size_matches_pytorch(s):
    for i, k, p, d in itertools.product(range(1, 9), range(1, 6), range(0, 4), (1, 2)):
        layer = nn.Conv2d(1, 1, (k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1))
        assert ours(conv_output_size, i, k, s, p, d) == torch_size(layer, i), (i, k, s, p, d)


def test_formula_and_dcgan_chain():
    for i, k, s, p in itertools.product(range(1, 9), range(1, 6), range(1, 4), range(0, 2)):
        if (i - 1) * s + k - 2 * p >= 1:
            assert conv_transpose_output_size(i, k, s, p) == (i - 1) * s + k - 2 * p
    sizes = [1]
    for k, s, p in [(4, 1, 0)] + [(4, 2, 1)] * 4:
        sizes.append(conv_transpose_output_size(sizes[-1], k, s, p))
    assert sizes == [1, 4, 8, 16, 32, 64]
    assert conv_transpose_output_size(1, 7) == 7 and conv_transpose_output_size(7, 4, 2, 1) == 14


def test_transposed_inverts_conv_size():
    for i, k, s, p in itertools.product(range(1, 10), range(1, 6), range(1, 4), range(0, 3)):
        try: o = conv_transpose_output_size(i, k, s, p)
        except ValueError: continue
        assert conv_output_size(o, k, s, p) == i
        for op in range(s):
            assert conv_output_size(conv_transpose_output_size(i, k, s, p, op), k, s, p) == i


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match='^p:'): conv_transpose_output_size(4, 3, 1, -1)
    with pytest.raises(ValueError, match='^s:'): conv_transpose_output_size(4, 3, 0)
    with pytest.raises(ValueError, match='^i:'): conv_output_size(2.5, 3)
    with pytest.raises(ValueError, match='^k:'): conv_output_size(3, True)
    with pytest.raises(ValueError, match='^output_padding'): conv_transpose_output_size(4, 4, 2, 1, output_padding=2)
    with pytest.raises(ValueError, match='^k:'): conv_output_size(3, 5)                 # kernel larger than the input
    with pytest.raises(ValueError, match='^p:'): conv_transpose_output_size(1, 1, 1, 1)  # padding eats the output

from torch import nn
from ganlab.shapes import checkerboard

def test_checkerboard_of_kernels_of_ones_matches_the_coverage_rule():
    "A kernel of ones measures coverage: uniform (score 0) exactly when the stride divides the kernel size."
    for k in range(2, 7):
        layer = nn.ConvTranspose2d(1, 1, k, 2, bias=False)
        nn.init.ones_(layer.weight)
        score = checkerboard(layer, 1, size=10, border=k)
        assert (score < 1e-9) == (k % 2 == 0), (k, score)

def test_checkerboard_orders_the_upsamplers():
    "Random phases (transposed conv, plain PixelShuffle) > 0.5; ICNR and resize-then-convolve score 0."
    torch.manual_seed(0)
    transposed = nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False)
    sub_pixel = nn.Sequential(nn.Conv2d(8, 16, 3, 1, 1, bias=False), nn.PixelShuffle(2))
    icnr = nn.Sequential(nn.Conv2d(8, 16, 3, 1, 1, bias=False), nn.PixelShuffle(2))
    with torch.no_grad():
        icnr[0].weight.copy_(torch.randn(4, 8, 3, 3).repeat_interleave(4, 0))
    resize = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(8, 4, 3, 1, 1, bias=False))
    scores = [checkerboard(layer, 8) for layer in (transposed, sub_pixel, icnr, resize)]
    assert min(scores[:2]) > 0.5 and max(scores[2:]) < 1e-6, scores

def test_checkerboard_bad_input():
    with pytest.raises(ValueError, match='^size: expected an input larger than the border 4'):
        checkerboard(nn.ConvTranspose2d(1, 1, 4, 2, 1), 1, size=4)

def test_checkerboard_follows_the_layer_dtype():
    layer = nn.ConvTranspose2d(2, 1, 4, 2, 1, bias=False).double()
    nn.init.ones_(layer.weight)
    assert checkerboard(layer, 2) == 0.
