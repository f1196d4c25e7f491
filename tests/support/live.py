"""The live test server lives in the platform so benchmarks use the same one."""

from shared.devstack.live import live_server

__all__ = ["live_server"]
