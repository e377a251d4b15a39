"""local-mlx sidecar: FastAPI + mlx-lm. The entry point is ../server.py."""
