"""Fixtures that several test modules share."""

import pytest

import skvae._training


@pytest.fixture
def interrupted_on_third_epoch(monkeypatch):
    """Training's third epoch raises KeyboardInterrupt, as a user's Ctrl-C would;
    the list of epochs begun, one entry each."""
    real_epoch = skvae._training.train_epoch
    calls = []

    def epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(skvae._training, "train_epoch", epoch)
    return calls
