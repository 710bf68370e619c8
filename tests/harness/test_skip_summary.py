"""`make test` prints one line per skip reason, however many tests a missing server flavour skips."""

from types import SimpleNamespace

from tests.harness.skips import skip_summary


def skipped(reason: str, where: str = "tests/a.py") -> SimpleNamespace:
    return SimpleNamespace(longrepr=(where, 1, f"Skipped: {reason}"))


def test_identical_reasons_fold_into_one_line_most_frequent_first():
    reports = [skipped("no debian nats-server", f"tests/t{n}.py") for n in range(107)]
    reports += [skipped("needs nats-server >= 2.10.4"), skipped("needs nats-server >= 2.10.4", "tests/b.py")]
    reports.append(SimpleNamespace(longrepr="a skip without a location"))
    assert skip_summary(reports) == [
        "SKIPPED 107 tests: no debian nats-server",
        "SKIPPED 2 tests: needs nats-server >= 2.10.4",
        "SKIPPED 1 test: a skip without a location",
    ]
