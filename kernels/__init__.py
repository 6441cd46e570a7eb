"""kernels: pure numba functions on numpy arrays (no I/O, no clock, no logging, no polars).

Modules are grouped by family:

- ``rolling``: EMA, rolling mean/std/z-score;
- ``momentum``: RSI, stochastics, Williams %R, CCI, MFI, ROC, momentum;
- ``trend``: SMA, WMA, DEMA, TEMA, TRIX, KAMA, MACD, ADX, Aroon, Ichimoku, Parabolic SAR;
- ``volatility``: Bollinger, ATR/NATR, Keltner, Donchian, realised volatility;
- ``volume``: OBV, VWAP (rolling and anchored), A/D, Chaikin money flow and oscillator;
- ``backtest``: the target-position portfolio simulation; ``sweep``: parameter sweeps;
- ``stats``: performance metrics; ``simulate``: synthetic-market paths;
- ``amm``: Uniswap V2 amounts and V3 tick / liquidity maths in float, impermanent loss, the
  V3 LP range backtest and its parallel sweep (the exact integer paths are in
  ``research_lib.defi.uniswap``);
- ``lending``: Aave V3 interest factors, index accrual, health factor, liquidation price.

Import the module you need; nothing is re-exported here, so importing ``kernels`` compiles
nothing. It does start numba's threading layer, and drops numba's cache of the package when
any module changed since the cache was written (see ``drop_stale_cache``).
``research_lib.indicators`` lists every indicator with its inputs and reference.
"""

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numba
from numba import get_num_threads
from numba.core.caching import UserProvidedCacheLocator

_HERE = Path(__file__).resolve().parent
SOURCES_STAMP = "kernels-sources.json"
_IMPORT = re.compile(r"^from kernels\.(\w+) import", re.MULTILINE)


def cache_dir() -> Path:
    """Where numba caches this package's kernels (``NUMBA_CACHE_DIR`` or ``__pycache__``)."""
    if numba.config.CACHE_DIR:
        sub = UserProvidedCacheLocator.get_suitable_cache_subpath(str(_HERE / "__init__.py"))
        return Path(numba.config.CACHE_DIR) / sub
    return _HERE / "__pycache__"


def module_digests() -> dict[str, str]:
    """Per module: sha256 of its source and of every ``kernels`` module it imports, directly
    or not (what its cached functions may hold compiled copies of)."""
    sources = {path.stem: path.read_bytes() for path in sorted(_HERE.glob("*.py"))}
    imports = {
        name: set(_IMPORT.findall(text.decode())) & set(sources) for name, text in sources.items()
    }
    digests = {}
    for name in sources:
        seen = {name}
        todo = [name]
        while todo:
            for dep in imports[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        digest = hashlib.sha256()
        for dep in sorted(seen):
            digest.update(dep.encode() + b"\0" + sources[dep] + b"\0")
        digests[name] = digest.hexdigest()
    return digests


def drop_stale_cache() -> list[str]:
    """Delete the numba cache of every module whose imports changed since it was written.

    Numba keys a cached function on its own source file only, and a cached caller holds its
    own compiled copy of every callee: after a change to ``kernels/rolling.py`` alone,
    ``kernels/volatility.py``'s cached kernels would still run the old rolling code. The
    digests of ``module_digests`` are kept next to the cache; a module whose digest changed
    loses its cache files and numba recompiles it. Returns the modules dropped. (When the
    package's ``__pycache__`` is not writable numba caches under the user's home instead;
    that cache is not covered.)
    """
    folder = cache_dir()
    stamp = folder / SOURCES_STAMP
    digests = module_digests()
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError):
        old = {}
    if old == digests:
        return []
    dropped = []
    for name, digest in digests.items():
        if old.get(name) == digest:
            continue
        files = [*folder.glob(f"{name}.*.nbi"), *folder.glob(f"{name}.*.nbc")]
        try:
            for path in files:
                path.unlink(missing_ok=True)
        except OSError:
            return dropped  # not ours to delete (read-only): leave the stamp as it was
        if files:
            dropped.append(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".stamp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(digests, handle, sort_keys=True)
        os.replace(tmp, stamp)
    except OSError:
        pass  # a read-only tree: numba cannot cache there either
    return dropped


drop_stale_cache()

# Start numba's threading layer at import. The windowed kernels are cached functions that call
# parallel (prange) ones, and numba records in a caller's cache entry that the threading layer
# must be started only if the parallel callee was compiled, not loaded from the cache, in the
# process that compiled the caller; such a caller can segfault when loaded in a fresh process
# (numba issue #8578). Starting the layer here costs ~20 ms and compiles nothing.
get_num_threads()
