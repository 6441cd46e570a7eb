"""research_lib: the friendly layer over the numba kernels.

Data sources, the parquet lake, features, models, backtests, strategies and the papermill
pipeline. Notebooks and the executor import from here; kernels never import from here.
"""

__version__ = "0.1.0"
