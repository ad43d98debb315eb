"""Every benchmark, one after the other: `./dev bench` (or `python -m bench`)."""

import importlib
import pkgutil
from pathlib import Path

# Modules that are benchmarks have a main(); helpers (nodes) have none.
for module_info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]),
                          key=lambda m: m.name):
    if module_info.name == "__main__":
        continue
    module = importlib.import_module(f"bench.{module_info.name}")
    if hasattr(module, "main"):
        print(f"\n== bench/{module_info.name}.py", flush=True)
        module.main([])
