"""Programs that tests/test_distributed.py starts under ``mpiexec``; each rank runs one."""
