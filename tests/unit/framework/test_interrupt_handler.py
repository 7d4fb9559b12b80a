"""The interrupt hook puts one handler on SIGINT and SIGTERM while a pipeline runs and gives the old ones back."""

import signal

import pytest

from classwise.framework.interrupts import InterruptHook, RunInterrupted


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_each_signal_raises_run_interrupted_once_then_the_old_handler_is_back(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = InterruptHook()
    hook.before_pipeline_run({}, None, None)  # no active MLflow run: only the handlers are installed
    try:
        assert signal.getsignal(signum) == hook._on_signal
        with pytest.raises(RunInterrupted):
            signal.raise_signal(signum)
        assert hook.signum == signum
        assert {s: signal.getsignal(s) for s in before} == before  # a second Ctrl-C acts as usual
    finally:
        hook.after_pipeline_run({}, None, None, None)
    assert {s: signal.getsignal(s) for s in before} == before


def test_after_the_pipeline_the_handlers_are_the_previous_ones():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = InterruptHook()
    hook.before_pipeline_run({}, None, None)
    assert all(signal.getsignal(s) == hook._on_signal for s in before)
    hook.after_pipeline_run({}, None, None, None)
    assert {s: signal.getsignal(s) for s in before} == before
