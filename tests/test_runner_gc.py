"""run_sources tunes the cyclic garbage collector only while the sources run."""
import gc

from aiswatch.runner import GC_THRESHOLDS, _collector_tuned


def test_collector_is_tuned_while_running_and_restored_after():
    before = gc.get_threshold()
    with _collector_tuned():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        cycle = []
        cycle.append(cycle)   # cycles made meanwhile are still collected
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_restored_when_the_run_fails():
    before = gc.get_threshold()
    try:
        with _collector_tuned():
            raise RuntimeError("source failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
