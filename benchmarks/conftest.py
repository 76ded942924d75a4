import os
import sys

# Benchmarks import their NumPy peers (numpy_pfr.py, ...) from this directory.
sys.path.insert(0, os.path.dirname(__file__))
