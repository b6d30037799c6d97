"""The numpy/torch bridge: devices, conversion, quasi-random draws, batching."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch

from skvae._model import VAEConfig, build_vae
from skvae._torch_utils import (
    ALIGNMENT,
    MappedRows,
    aligned,
    as_rows,
    batched,
    is_memory_mapped,
    make_generator,
    module_for_inference,
    resolve_device,
    standard_normal_draws,
    to_numpy,
    to_tensor,
)

CPU = torch.device("cpu")
HAS_CUDA = torch.cuda.is_available()
RNG = np.random.default_rng(0)
X64 = RNG.normal(size=(20, 4))


# ------------------------------------------------------------------ devices


def test_resolve_device_cpu():
    assert resolve_device("cpu") == CPU


def test_resolve_device_auto():
    expected = "cuda" if HAS_CUDA else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
def test_resolve_device_cuda_without_cuda():
    with pytest.raises(ValueError, match=r"torch\.cuda\.is_available"):
        resolve_device("cuda")


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_resolve_device_cuda_with_cuda():
    assert resolve_device("cuda").type == "cuda"


def test_make_generator_is_private_and_seeded():
    state = torch.random.get_rng_state()
    a = torch.randn(5, generator=make_generator(3, CPU))
    b = torch.randn(5, generator=make_generator(np.int64(3), CPU))
    c = torch.randn(5, generator=make_generator(4, CPU))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())


# ------------------------------------------------------------------ conversion


def test_to_tensor_shares_memory_when_possible():
    X = X64.astype(np.float32)
    t = to_tensor(X, torch.float32, CPU)
    assert t.dtype == torch.float32
    assert np.shares_memory(X, t.numpy())
    X[0, 0] = 123.0
    assert t[0, 0].item() == 123.0


@pytest.mark.parametrize(
    "X, dtype",
    [
        (X64, torch.float32),  # dtype differs
        (X64.astype(np.float32), torch.float64),
        (np.asfortranarray(X64), torch.float64),  # layout differs
        (X64[:, ::2], torch.float64),  # a strided view
    ],
)
def test_to_tensor_copies_otherwise(X, dtype):
    t = to_tensor(X, dtype, CPU)
    assert t.dtype == dtype and t.is_contiguous()
    assert not np.shares_memory(X, t.numpy())
    np.testing.assert_array_equal(t.numpy(), X.astype(t.numpy().dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_to_tensor_read_only_array_copied_without_warning(dtype):
    X = X64.astype(np.float64 if dtype == torch.float64 else np.float32)
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = to_tensor(X, dtype, CPU)
    assert not np.shares_memory(X, t.numpy())
    np.testing.assert_array_equal(t.numpy(), X)
    t[0, 0] = -1.0  # writable, and the source is untouched
    assert X[0, 0] != -1.0


def test_to_tensor_read_only_memmap(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X64)
    X = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = to_tensor(X, torch.float64, CPU)
    np.testing.assert_array_equal(t.numpy(), X64)


def test_aligned_copies_only_what_starts_off_the_boundary():
    t = torch.arange(40, dtype=torch.float64).reshape(10, 4)
    assert t.data_ptr() % ALIGNMENT == 0 and aligned(t) is t
    view = t[1:]  # 32 bytes past the boundary
    moved = aligned(view)
    assert moved.data_ptr() % ALIGNMENT == 0 and moved.data_ptr() != view.data_ptr()
    assert moved.is_contiguous() and torch.equal(moved, view)


def test_to_numpy_round_trip():
    t = torch.tensor(X64, requires_grad=True)
    out = to_numpy(t * 1.0)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, X64)


# ------------------------------------------------------------------ standard normal


def test_standard_normal_draws_deterministic_per_seed():
    a = standard_normal_draws(256, 3, seed=0)
    assert a.shape == (256, 3) and a.dtype == torch.float64
    assert torch.equal(a, standard_normal_draws(256, 3, seed=0))
    assert not torch.equal(a, standard_normal_draws(256, 3, seed=1))


def test_standard_normal_draws_leave_global_rng_alone():
    state = torch.random.get_rng_state()
    standard_normal_draws(64, 2, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_standard_normal_draws_dtype(dtype):
    draws = standard_normal_draws(64, 2, seed=0, dtype=dtype)
    assert draws.dtype == dtype
    torch.testing.assert_close(
        draws, standard_normal_draws(64, 2, seed=0).to(dtype), rtol=0, atol=0
    )


@pytest.mark.parametrize("n, dim", [(1024, 1), (4096, 3), (1000, 10)])
def test_standard_normal_draws_are_standard_normal(n, dim):
    draws = standard_normal_draws(n, dim, seed=2)
    assert torch.isfinite(draws).all()
    # Five standard errors of i.i.d. normal draws (the Sobol points do better):
    # the mean's is 1/sqrt(n), the sample variance's sqrt(2/(n-1)).
    assert torch.all(draws.mean(0).abs() <= 5 / math.sqrt(n))
    assert torch.all((draws.var(0) - 1).abs() <= 5 * math.sqrt(2 / (n - 1)))
    # Independent coordinates: the off-diagonal correlations are small too.
    if dim > 1:
        corr = torch.corrcoef(draws.T) - torch.eye(dim, dtype=draws.dtype)
        assert corr.abs().max() <= 5 / math.sqrt(n)
    # The fraction below each normal quantile matches it (Kolmogorov-style check).
    for q, p in [(-1.0, 0.158655), (0.0, 0.5), (1.5, 0.933193)]:
        frac = (draws < q).double().mean(0)
        assert torch.all((frac - p).abs() <= 5 * math.sqrt(p * (1 - p) / n))


def test_standard_normal_draws_more_even_than_iid():
    # Scrambled Sobol points: the sample mean is far closer to 0 than i.i.d. draws'
    # 1/sqrt(n) standard error.
    n = 4096
    draws = standard_normal_draws(n, 2, seed=3)
    assert draws.mean(0).abs().max() < 0.5 / math.sqrt(n)


# ------------------------------------------------------------------ batching


@pytest.fixture(scope="module")
def model():
    return build_vae(VAEConfig(4, 2, (16, 8)), torch.Generator().manual_seed(0))


def _encode_mean(module):
    return lambda xb: module.encode(xb)[0]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 19, 20, 4096])
def test_batched_independent_of_batch_size(model, batch_size):
    module = module_for_inference(model, torch.float64, CPU)
    X = torch.from_numpy(X64)
    with torch.no_grad():
        ref = module.encode(X)[0]  # all rows at once
    got = batched(_encode_mean(module), X, batch_size)
    assert got.shape == ref.shape and got.device == CPU
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_batched_runs_in_inference_mode(model):
    modes, sizes = [], []

    def fn(xb):
        modes.append(torch.is_inference_mode_enabled())
        sizes.append(len(xb))
        return model.encode(xb)[0]

    out = batched(fn, torch.from_numpy(X64).float(), 8)
    assert modes == [True, True, True] and sizes == [8, 8, 4]
    assert not out.requires_grad


def test_batched_needs_a_row(model):
    with pytest.raises(ValueError, match="at least one row"):
        batched(_encode_mean(model), torch.zeros(0, 4))


def test_module_for_inference_same_module_when_matching(model):
    assert module_for_inference(model, torch.float32, CPU) is model


def test_module_for_inference_float64_copy(model):
    before = [p.detach().clone() for p in model.parameters()]
    copy = module_for_inference(model, torch.float64, CPU)
    assert copy is not model
    for p, p0, q in zip(model.parameters(), before, copy.parameters(), strict=True):
        assert p.dtype == torch.float32 and torch.equal(p, p0)  # original unchanged
        assert q.dtype == torch.float64
        assert torch.equal(q, p0.double())
    # The copy is independent of the original.
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert torch.equal(next(model.parameters()), before[0])


def memmap_of(tmp_path, X, mode="r"):
    path = tmp_path / "X.dat"
    X.tofile(path)
    return np.memmap(path, dtype=X.dtype, mode=mode, shape=X.shape)


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_memory_maps_and_their_views_are_recognised(tmp_path, mode):
    X = np.arange(12.0).reshape(4, 3)
    mapped = memmap_of(tmp_path, X, mode)
    assert is_memory_mapped(mapped)
    assert is_memory_mapped(np.asarray(mapped)[1:])  # what validate_data returns
    assert not is_memory_mapped(X)
    assert not is_memory_mapped(np.array(mapped))  # a copy in memory
    assert not is_memory_mapped(pickle.loads(pickle.dumps(mapped)))  # a copy, too


def test_memory_map_from_np_load_is_recognised(tmp_path):
    np.save(tmp_path / "X.npy", np.ones((3, 2)))
    assert is_memory_mapped(np.load(tmp_path / "X.npy", mmap_mode="r"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mapped_rows_read_what_a_tensor_holds(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    rows = as_rows(memmap_of(tmp_path, X), dtype, torch.device("cpu"))
    tensor = as_rows(X, dtype, torch.device("cpu"))
    assert isinstance(rows, MappedRows) and isinstance(tensor, torch.Tensor)
    assert len(rows) == 50 and rows.shape == (50, 3) and rows.dtype == dtype
    index = torch.tensor([7, 3, 3, 49, 0])
    torch.testing.assert_close(
        rows.index_select(0, index), tensor[index], rtol=0, atol=0
    )
    torch.testing.assert_close(rows[10:20], tensor[10:20], rtol=0, atol=0)
    # A subset is lazy, and composes with later indexing.
    subset = rows[torch.arange(49, -1, -2)]
    assert isinstance(subset, MappedRows) and len(subset) == 25
    expected = tensor[torch.arange(49, -1, -2)]
    torch.testing.assert_close(subset[5:9], expected[5:9], rtol=0, atol=0)
    torch.testing.assert_close(
        subset.index_select(0, torch.tensor([2, 0])), expected[[2, 0]], rtol=0, atol=0
    )
    assert rows[torch.tensor([1])][torch.tensor([0])][0:1].shape == (1, 3)


def test_mapped_rows_are_copies_that_leave_the_file_alone(tmp_path):
    X = np.zeros((4, 2), dtype=np.float32)
    mapped = memmap_of(tmp_path, X, mode="r+")
    block = as_rows(mapped, torch.float32, torch.device("cpu"))[0:2]
    block += 1.0
    assert np.all(mapped == 0)


def test_mapped_rows_clip_like_as_rows_in_memory(tmp_path):
    X = np.array([[-1e-9, 0.5], [1.0 + 1e-9, 1.0]])
    mapped = as_rows(memmap_of(tmp_path, X), torch.float32, torch.device("cpu"), (0, 1))
    in_memory = as_rows(X, torch.float32, torch.device("cpu"), (0, 1))
    torch.testing.assert_close(mapped[0:2], in_memory, rtol=0, atol=0)
    assert in_memory.min() == 0 and in_memory.max() == 1
    assert X[0, 0] < 0  # clipping copied X
