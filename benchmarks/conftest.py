import os
import sys

# The NumPy peers are "one core" baselines: pin NumPy's OpenBLAS pool before NumPy
# loads it (OpenBLAS reads this once, at load), so its mat-vec does not quietly use
# the second core. Only OpenBLAS: torch's own pools are set by the benchmarks that
# use torch. A caller's explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Benchmarks import their NumPy peers (numpy_pfr.py, ...) from this directory.
sys.path.insert(0, os.path.dirname(__file__))
