import math, pytest, torch
from ganlab import viz

PNG = b'\x89PNG\r\n\x1a\n'

def test_figures_save_as_png(tmp_path):
    pts = torch.randn(50, 2)
    assert viz.save_figure(viz.plot_samples_2d(pts, pts, torch.zeros(1, 2)), tmp_path/'a.png').read_bytes()[:8] == PNG
    assert viz.save_figure(viz.image_grid(torch.zeros(6, 3, 8, 8), nrow=3), tmp_path/'b.png').read_bytes()[:8] == PNG
    (tmp_path/'h.csv').write_text('step,d_loss,g_loss,seconds\n0,1.0,,0.1\n10,0.5,0.7,0.2\n')
    h = viz.read_history(tmp_path/'h.csv')
    assert h['step'] == [0., 10.] and math.isnan(h['g_loss'][0])
    assert viz.save_figure(viz.plot_history(h), tmp_path/'c.png').read_bytes()[:8] == PNG

def test_bad_shapes():
    with pytest.raises(ValueError, match=r'^fake: expected shape \(N, 2\)'): viz.plot_samples_2d(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match='^images: expected shape'): viz.image_grid(torch.zeros(3, 2, 8, 8))
