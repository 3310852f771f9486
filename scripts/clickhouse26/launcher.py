"""Runs the ClickHouse server inside PyPI's chdb-core wheel (scripts/services.sh,
service clickhouse26).

The wheel's chdb/_chdb.abi3.so holds clickhouse-local, whose LocalServer can
open the real HTTP and TCP handlers:

1. the working directory holds config.xml (listen_host, http_port, tcp_port,
   users_config) and users.xml: clickhouse-local reads ./config.xml;
2. the extension is loaded directly, after a dlopen with RTLD_DEEPBIND (as
   chdb's own __init__ does, so the pybind11 stubs take operator new/delete
   from the library's jemalloc), without importing the chdb package: its
   __init__ starts another engine, and a second one fails with
   "EventNotifier is initialized twice";
3. one query opens the listeners and then never ends: they live while it
   runs. SIGTERM ends the process at once; MergeTree data in DATA_DIR stays.

Usage: python launcher.py DATA_DIR (from the directory holding config.xml)
"""

import ctypes
import importlib.machinery
import importlib.util
import os
import sys

RTLD_DEEPBIND = 0x00008

# A query that never ends (100 years of one row a second), without the
# limits that would stop it: the listeners live as long as it runs.
FOREVER = (
    "SELECT sleepEachRow(1) FROM numbers(3153600000) "
    "SETTINGS function_sleep_max_microseconds_per_block = 0, max_block_size = 1, "
    "max_execution_time = 0 FORMAT Null"
)


def load_engine():
    """Loads chdb/_chdb.abi3.so as a module without running chdb/__init__.py."""
    spec = importlib.util.find_spec("chdb")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("launcher.py: the chdb package is not installed in this Python")
    package_dir = list(spec.submodule_search_locations)[0]
    so = os.path.join(package_dir, "_chdb.abi3.so")
    cwd = os.getcwd()
    # chdb's __init__ loads the extension from its own directory; do the same.
    os.chdir(package_dir)
    try:
        ctypes.CDLL(so, mode=sys.getdlopenflags() | RTLD_DEEPBIND)
        loader = importlib.machinery.ExtensionFileLoader("_chdb", so)
        module_spec = importlib.util.spec_from_file_location("_chdb", so, loader=loader)
        module = importlib.util.module_from_spec(module_spec)
        loader.exec_module(module)
    finally:
        os.chdir(cwd)
    return module


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: launcher.py DATA_DIR (run from the directory holding config.xml)")
    data_dir = sys.argv[1]
    if not os.path.isfile("config.xml"):
        sys.exit(f"launcher.py: no config.xml in {os.getcwd()}")
    engine = load_engine()
    print(f"launcher.py: chdb engine loaded, data in {data_dir}", flush=True)
    # Raises (RuntimeError with the server's message) when a statement fails.
    engine.query(
        f"SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; {FOREVER}", "CSV", path=data_dir
    )
    # Only reached when the 100 years are over, or the query was killed.
    sys.exit("launcher.py: the listening query ended")


if __name__ == "__main__":
    main()
