"""The `bridge` command line: `main.main` parses and dispatches; each command is a module here.

Data flows down: a command loads its config (bridge.config) and starts the runtime
(bridge.runtime), the fleet tools (bridge.fleet) or one client call (bridge.nats).
"""
