import numpy as np

from eddies.tasks.counter_noise import counter_uniform


def test_noise_depends_only_on_its_coordinates():
    a = counter_uniform(3, 0, 1, np.array([0, 5, 9]), 16)
    b = counter_uniform(3, 0, 1, np.array([9, 5]), 16)
    np.testing.assert_array_equal(a[1:][::-1], b)
    for other in ((4, 0, 1), (3, 1, 1), (3, 0, 2)):  # seed, stream, epoch each change it
        assert not np.allclose(counter_uniform(*other, np.array([0, 5, 9]), 16), a)


def test_noise_is_uniform_and_uncorrelated():
    u = counter_uniform(0, 0, 0, np.arange(2000), 50)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    chi2 = ((counts - u.size / 10) ** 2 / (u.size / 10)).sum()
    assert chi2 < 30  # 9 degrees of freedom: p < 1e-3 if uniform
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.01
