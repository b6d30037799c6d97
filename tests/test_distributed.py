"""skvae on a dask cluster: grid searches on its workers, dask-ml's Incremental,
and a fitted model sent to a worker and back.

One 2-worker process ``LocalCluster`` serves the module: it listens on 127.0.0.1
only, has no dashboard, is closed whatever happens, and every test runs under a
deadline. The module is skipped, saying why, where the ``distributed`` extra
(dask, distributed, dask-ml) is missing.
"""

import contextlib
import logging
import signal

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the distributed extra is not installed")
pytest.importorskip("dask_ml", reason="the distributed extra is not installed")

import dask.array as da
import joblib
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster, get_task_stream
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = load_digits(return_X_y=True)
X, y = X[:400], y[:400]
X_SCALED = StandardScaler().fit_transform(X)
#: Seconds any one test (or the cluster's start) may take before it fails.
DEADLINE = 120


@contextlib.contextmanager
def deadline(seconds):
    """Raise TimeoutError in the main thread once ``seconds`` have passed."""

    def expire(signum, frame):
        raise TimeoutError(f"over the {seconds} s deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def client():
    with deadline(DEADLINE):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(autouse=True)
def bounded():
    with deadline(DEADLINE):
        yield


def worker_addresses(client):
    return set(client.scheduler_info()["workers"])


def searched(search, X, y=None, *, backend=None):
    """The fitted search's cv_results_ scores, fitted in-process or on dask."""
    context = (
        joblib.parallel_config(backend=backend) if backend else contextlib.nullcontext()
    )
    with context:
        search.fit(X, y)
    return search


def test_the_cluster_listens_on_loopback_only(client):
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert all(a.startswith("tcp://127.0.0.1:") for a in worker_addresses(client))


@pytest.mark.parametrize(
    "make_search, data",
    [
        (
            lambda n_jobs: GridSearchCV(
                make_pipeline(
                    StandardScaler(),
                    VAETransformer(latent_dim=4, max_iter=15, random_state=0),
                    LogisticRegression(max_iter=500),
                ),
                {"vaetransformer__hidden_layer_sizes": [(8,), (32,)]},
                cv=2,
                n_jobs=n_jobs,
            ),
            (X, y),
        ),
        (
            lambda n_jobs: GridSearchCV(
                VAETransformer(latent_dim=2, max_iter=15, random_state=0),
                {"hidden_layer_sizes": [(8,), (32,)]},
                cv=2,
                n_jobs=n_jobs,
            ),
            (X_SCALED, None),
        ),
    ],
    ids=["pipeline", "bare-transformer"],
)
def test_grid_search_on_the_workers_matches_one_process(client, make_search, data):
    local = searched(make_search(1), *data)
    with get_task_stream(client) as stream:
        remote = searched(make_search(-1), *data, backend="dask")
    # The fits ran on the cluster's workers...
    ran_on = {task["worker"] for task in stream.data}
    assert stream.data and ran_on <= worker_addresses(client)
    # ...and scored exactly as in this process.
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_


def test_incremental_streams_blocks_through_partial_fit(client):
    blocks = da.from_array(X_SCALED, chunks=(40, X_SCALED.shape[1]))
    assert blocks.numblocks[0] == 10
    incremental = Incremental(
        VAETransformer(latent_dim=2, random_state=0), shuffle_blocks=False
    )
    incremental.fit(blocks)
    model = incremental.estimator_
    assert model.n_iter_ == 10  # one epoch per block
    # The same ten partial_fit calls in this process train the same model.
    local = VAETransformer(latent_dim=2, random_state=0)
    for start in range(0, len(X_SCALED), 40):
        local.partial_fit(X_SCALED[start : start + 40])
    np.testing.assert_array_equal(model.transform(X_SCALED), local.transform(X_SCALED))
    # transform and score work through the wrapper, block by block.
    Z = incremental.transform(blocks)
    assert isinstance(Z, da.Array)
    np.testing.assert_array_equal(Z.compute(), local.transform(X_SCALED))
    assert incremental.score(blocks, None) == pytest.approx(local.score(X_SCALED))


def test_a_fitted_model_travels_to_a_worker_and_back_unchanged(client):
    model = VAETransformer(latent_dim=2, max_iter=10, random_state=0).fit(X_SCALED)
    [remote] = client.scatter([model])
    on_worker = client.submit(lambda m, data: m.transform(data), remote, X_SCALED)
    np.testing.assert_array_equal(on_worker.result(), model.transform(X_SCALED))
    back = client.submit(lambda m: m, remote).result()
    assert back is not model
    for name, tensor in model.module_.state_dict().items():
        assert back.module_.state_dict()[name].equal(tensor)
    np.testing.assert_array_equal(
        back.score_samples(X_SCALED), model.score_samples(X_SCALED)
    )
    # The model keeps training where it stopped, as it would have here.
    back.partial_fit(X_SCALED)
    model.partial_fit(X_SCALED)
    np.testing.assert_array_equal(back.transform(X_SCALED), model.transform(X_SCALED))
