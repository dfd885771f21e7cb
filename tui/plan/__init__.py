"""Stage 4, the plan: the request gathered from what a user names (requests.py), one rule per setting
(rules.py, fitting.py), the memory estimate (memory.py), and the Plan with a reason per value."""
