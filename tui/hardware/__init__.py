"""Stage 1, hardware: the GPUs on this machine (one module per vendor), live GPU use, and the devices a
hardware profile describes when planning for another machine."""
