"""A tenant app with one new migration, for bench/rollout.py (installed only by its
roll-out subprocesses, through rollout_bench_settings)."""
