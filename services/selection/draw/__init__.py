"""The draw: pure algorithm (standard library only) and the stand-alone verifier."""
