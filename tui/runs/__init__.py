"""Stage 6, runs: start, stop and status (lifecycle.py, processes.py), following the logs into events
(follower.py, logfiles.py), watching (watch.py), retry after an OOM, and the demo run."""
