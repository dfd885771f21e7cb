"""PyTorch's CUDA caching allocator, replayed on the simulated step's allocations: what the card
reserves (torch.cuda.max_memory_reserved; nvidia-smi adds the CUDA context), not only what is
allocated.

The fake step allocates and frees storages in the order the real step does; each is passed
through a model of c10/cuda/CUDACachingAllocator.cpp (torch 2.x), in both of its modes:

- the default: a request is rounded up to 512 bytes; up to 1 MiB it comes from the small pool,
  whose segments are 2 MiB, else from the large pool, whose segments are 20 MiB for requests
  under 10 MiB and the request rounded up to 2 MiB above that. The smallest cached free block
  that holds the request is used (best fit), split when what is left is at least 512 bytes
  (small pool) or more than 1 MiB (large pool); a freed block merges with free neighbours of
  its segment. Segments are never given back (no empty_cache in a training step).
- `expandable_segments:True`: one segment per pool that grows by mapping pages (2 MiB small,
  20 MiB large); a request no free block holds extends the segment's end, reusing a free block
  there. What is reserved is what is mapped.

Not modelled: streams other than the default one, `max_split_size_mb`, garbage-collection
thresholds, and the allocator freeing its cache and retrying when cudaMalloc fails near the
card's limit (so on a full card the real reserve can be lower: this is the reserve with room to
spare, what nvidia-smi shows on a card that fits). Pure Python: no torch needed.
"""

from __future__ import annotations

import bisect

MIN_BLOCK = 512  # kMinBlockSize
SMALL_SIZE = 1 << 20  # kSmallSize: largest request of the small pool
SMALL_BUFFER = 2 << 20  # kSmallBuffer: a small-pool segment, and an expandable small page
LARGE_BUFFER = 20 << 20  # kLargeBuffer: a large-pool segment for small large requests, an expandable page
MIN_LARGE_ALLOC = 10 << 20  # kMinLargeAlloc
ROUND_LARGE = 2 << 20  # kRoundLarge


def round_size(size: int) -> int:
    return MIN_BLOCK if size < MIN_BLOCK else -(-size // MIN_BLOCK) * MIN_BLOCK


def _up(size: int, unit: int) -> int:
    return -(-size // unit) * unit


class _Pool:
    """The free blocks of one pool, best fit first: (size, segment, address)."""

    def __init__(self, small: bool) -> None:
        self.small = small
        self.free: list[tuple[int, int, int]] = []

    def take(self, size: int) -> tuple[int, int, int] | None:
        at = bisect.bisect_left(self.free, (size, -1, -1))
        return self.free.pop(at) if at < len(self.free) else None

    def give(self, block: tuple[int, int, int]) -> None:
        bisect.insort(self.free, block)

    def drop(self, block: tuple[int, int, int]) -> None:
        at = bisect.bisect_left(self.free, block)
        if at < len(self.free) and self.free[at] == block:
            self.free.pop(at)

    def should_split(self, remaining: int) -> bool:
        return remaining >= MIN_BLOCK if self.small else remaining > SMALL_SIZE


class CachingAllocator:
    """`malloc(key, nbytes)` and `free(key)` in the step's order; `reserved` and `peak_reserved`."""

    def __init__(self, expandable: bool = False) -> None:
        self.expandable = expandable
        self.pools = {True: _Pool(small=True), False: _Pool(small=False)}
        self.blocks: dict[tuple[int, int], list] = {}  # (segment, address) -> [size, free, small]
        self.ends: dict[tuple[int, int], int] = {}  # (segment, end address) -> start address
        self.used: dict[object, tuple[int, int]] = {}  # key -> (segment, address)
        self.mapped: dict[int, int] = {}  # segment -> bytes reserved
        self.expandable_segment = {True: None, False: None}  # pool -> its one segment (expandable)
        self.reserved = self.peak_reserved = 0
        self.allocated = self.peak_allocated = 0

    # -- blocks -----------------------------------------------------------------------------
    def _put(self, segment: int, address: int, size: int, free: bool, small: bool) -> None:
        self.blocks[(segment, address)] = [size, free, small]
        self.ends[(segment, address + size)] = address
        if free:
            self.pools[small].give((size, segment, address))

    def _remove(self, segment: int, address: int) -> list:
        size, free, small = self.blocks.pop((segment, address))
        del self.ends[(segment, address + size)]
        if free:
            self.pools[small].drop((size, segment, address))
        return [size, free, small]

    def _new_segment(self, size: int) -> int:
        segment = len(self.mapped)
        self.mapped[segment] = size
        self.reserved += size
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return segment

    def _grow(self, small: bool, size: int) -> tuple[int, int, int]:
        """A free block of at least `size` at the end of the pool's expandable segment."""
        page = SMALL_BUFFER if small else LARGE_BUFFER
        segment = self.expandable_segment[small]
        if segment is None:
            segment = self.expandable_segment[small] = self._new_segment(0)
        end = self.mapped[segment]
        start = self.ends.get((segment, end))
        last_free = start is not None and self.blocks[(segment, start)][1]
        have = end - start if last_free else 0
        extra = _up(size - have, page)
        if last_free:
            self._remove(segment, start)
        else:
            start = end
        self.mapped[segment] += extra
        self.reserved += extra
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return have + extra, segment, start

    # -- the allocator's two calls ----------------------------------------------------------
    def malloc(self, key, nbytes: int) -> None:
        if nbytes <= 0 or key in self.used:
            return
        size = round_size(nbytes)
        small = size <= SMALL_SIZE
        pool = self.pools[small]
        found = pool.take(size)
        if found is not None:
            block_size, segment, address = found
            del self.blocks[(segment, address)], self.ends[(segment, address + block_size)]
        elif self.expandable:
            block_size, segment, address = self._grow(small, size)
        else:
            if small:
                block_size = SMALL_BUFFER
            else:
                block_size = LARGE_BUFFER if size < MIN_LARGE_ALLOC else _up(size, ROUND_LARGE)
            segment, address = self._new_segment(block_size), 0
        if pool.should_split(block_size - size):
            self._put(segment, address + size, block_size - size, True, small)
            block_size = size
        self._put(segment, address, block_size, False, small)
        self.used[key] = (segment, address)
        self.allocated += block_size
        self.peak_allocated = max(self.peak_allocated, self.allocated)

    def free(self, key) -> None:
        where = self.used.pop(key, None)
        if where is None:
            return
        segment, address = where
        size, _, small = self._remove(segment, address)
        self.allocated -= size
        following = self.blocks.get((segment, address + size))
        if following is not None and following[1]:
            size += self._remove(segment, address + size)[0]
        before = self.ends.get((segment, address))
        if before is not None and self.blocks[(segment, before)][1]:
            size += self._remove(segment, before)[0]
            address = before
        self._put(segment, address, size, True, small)
