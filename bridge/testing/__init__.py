"""Helpers for tests and benchmarks of a bridge, ours or a user's: real nats-server processes on
loopback (nats_server), `bridge run` as a subprocess (bridgeproc), nats-py as the outside world
(outside) and a simulated fleet (fleet_sim). `outside` needs nats-py (the `dev` extra)."""
