"""What stays loaded in a running `bridge run`: the config checker's modules (YAML, jsonschema, the
schema, the loader) must not, and every top-level module must be one this file names.

The bridge runs as `python -m bridge run` does, under a probe that adds one thing: on SIGUSR1 it
writes `modules: NAME NAME ...` (every module in `sys.modules`; a None entry blocks an import,
it loads nothing) to the bridge's log. The bridge's own
code knows nothing of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bridge.testing.bridgeproc import BridgeProcess, memory_config

PROBE = """\
import os, runpy, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: os.write(1, ("modules: " + " ".join(sorted(name for name, module in sys.modules.items() if module)) + "\\n").encode()))
sys.argv[0] = "bridge"
runpy.run_module("bridge", run_name="__main__", alter_sys=True)
"""

# The config checker runs in a child process: none of it may stay in the bridge.
CHECKER_ONLY = ("yaml", "_yaml", "jsonschema", "jsonschema_specifications", "referencing", "rpds",
                "bridge.config.loader", "bridge.config.schema", "bridge.config.document", "bridge.config.checks",
                "bridge.config.overrides", "bridge.config.substitute", "bridge.config.convert")
# Loaded only when a config asks for them: a fleet key, a web view, TLS.
NOT_ASKED_FOR = ("bridge.fleet.follow", "bridge.nats.jetstream", "bridge.web", "twisted.web", "OpenSSL", "service_identity")
# Never used: the client's TLS is pyOpenSSL's (bridge.nats.tls.forgo_stdlib_ssl).
NEVER = ("ssl", "_ssl")

ALLOWED = {
    # the bridge, Twisted and Twisted's dependencies
    "bridge", "twisted", "zope", "attr", "attrs", "automat", "constantly", "incremental", "typing_extensions",
    # what Twisted's core brings: asyncio (twisted.internet.defer), and through twisted.python.compat's
    # http.cookiejar: urllib.request, http.client, email, tempfile and more
    "asyncio", "_asyncio", "concurrent", "http", "urllib", "email", "html", "calendar", "quopri",
    "tempfile", "random", "_random", "bisect", "_bisect", "hashlib", "_hashlib", "_blake2", "_sha512", "base64",
    "binascii", "ipaddress", "uuid", "_uuid", "platform", "logging", "zipfile", "pickle", "_pickle",
    "_compat_pickle", "inspect", "dis", "opcode", "_opcode", "ast", "_ast", "tokenize", "token", "linecache",
    "unicodedata", "pty", "tty", "termios",
    # the command line (argparse's help formatter imports shutil, which imports bz2 and lzma)
    "argparse", "gettext", "locale", "_locale", "shutil", "bz2", "_bz2", "lzma", "_lzma", "_compression", "zlib",
    "textwrap", "difflib",
    # the rest of the standard library the bridge and the interpreter use
    "socket", "_socket", "select", "selectors", "array", "subprocess", "_posixsubprocess", "fcntl", "grp", "pwd",
    "queue", "_queue", "contextvars", "_contextvars", "datetime", "_datetime", "hmac", "secrets", "fnmatch",
    "copy", "string", "_string", "heapq", "_heapq", "json", "_json", "ctypes", "_ctypes", "struct", "_struct",
    "math", "threading", "_thread", "time", "signal", "_signal", "errno", "gc", "weakref", "_weakref",
    "_weakrefset", "enum", "dataclasses", "typing", "_typing", "types", "functools", "_functools", "collections",
    "_collections", "_collections_abc", "abc", "_abc", "operator", "_operator", "reprlib", "keyword", "re",
    "_sre", "copyreg", "warnings", "_warnings", "traceback", "contextlib", "__future__", "io", "_io", "os",
    "posix", "posixpath", "genericpath", "stat", "_stat", "pathlib", "ntpath", "codecs", "_codecs", "encodings",
    "marshal", "zipimport", "atexit", "builtins", "sys", "site", "_sitebuiltins", "runpy", "importlib", "_imp",
    "_frozen_importlib", "_frozen_importlib_external", "itertools", "_distutils_hack", "__main__",
    # the editable install's import hook (absent from a regular install)
    "__editable___nats_sense_bridge_0_1_0_finder",
}


class ProbedBridge(BridgeProcess):
    def start(self) -> "ProbedBridge":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROBE, "run", str(self.config_path), "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        return self

    def loaded_modules(self, timeout: float = 10.0) -> set[str]:
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.log_records():
                if record.get("message", "").startswith("modules: "):
                    return set(record["message"].split()[1:])
            time.sleep(0.05)
        raise AssertionError(f"no module list within {timeout}s:\n{self.logs()}")


@pytest.fixture(scope="module")
def loaded(module_nats_server, nats_py, tmp_path_factory) -> set[str]:
    subscriptions = "".join(f"  - {{subject: m.{action}, action: {action}}}\n" for action in ("clear", "show_message"))
    publications = "  - {subject: m.temperature, sensor: temperature, interval: 1s}\n  - {subject: m.joystick, sensor: joystick}\n"
    config = memory_config(module_nats_server.url, "modules", subscriptions, publications)
    bridge = ProbedBridge(config, tmp_path_factory.mktemp("modules"), "modules").start()
    try:
        bridge.wait_ready(nats_py)
        nats_py.request("m.clear", b"", timeout=10)  # an action has run: what it needs is loaded
        yield bridge.loaded_modules()
    finally:
        assert bridge.stop() == 0


def test_the_probe_sees_the_running_bridge(loaded):
    assert {"bridge.runtime.bridge", "bridge.devices.memory", "bridge.config.model", "twisted.internet.reactor"} <= loaded


@pytest.mark.parametrize("name", CHECKER_ONLY + NOT_ASKED_FOR + NEVER)
def test_a_module_the_running_bridge_does_not_need_is_not_loaded(loaded, name):
    assert not {module for module in loaded if module == name or module.startswith(name + ".")}


def test_every_loaded_top_level_module_is_allowed(loaded):
    assert {module.split(".")[0] for module in loaded} - ALLOWED == set()


def test_a_fleet_bridge_that_applied_a_revision_keeps_no_checker_module(nats_py, tmp_path, monkeypatch):
    """Stored revisions are checked in a child process too: after the cached boot and a revision
    applied from the bucket, nothing of the checker is loaded."""
    from bridge.testing.nats_server import NatsServer
    from tests.harness.fleet import BUCKET, deployed
    from bridge.testing.polling import wait_for

    server = NatsServer(jetstream=True)
    try:
        url = server.start().url
        stored = "version: 1\nsubscriptions:\n  - subject: m.${device.id}.clear\n    action: clear\n"
        revision = deployed(url, stored, tmp_path, "modules")
        monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
        config = memory_config(url, "fleetmodules", fleet=f"{{key: modules, bucket: {BUCKET}}}")
        bridge = ProbedBridge(config, tmp_path, "fleetmodules").start()
        try:
            outside = type(nats_py)(url)
            try:
                bridge.wait_ready(outside)
                wait_for(lambda: bridge.info(outside)["config"]["revision"] == revision, what=bridge.logs())
                assert outside.request("m.fleetmodules.clear", b"", timeout=10).data
            finally:
                outside.close()
            loaded = bridge.loaded_modules()
        finally:
            assert bridge.stop() == 0
    finally:
        server.cleanup()
    assert "bridge.fleet.follow" in loaded
    assert not {module for module in loaded for name in CHECKER_ONLY if module == name or module.startswith(name + ".")}
