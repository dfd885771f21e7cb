"""The caching allocator model (tui/lf/simulate_allocator.py) on sequences whose reserve follows
from the rules of c10/cuda/CUDACachingAllocator.cpp, worked by hand."""

from __future__ import annotations

import pytest

from tui.lf.simulate_allocator import CachingAllocator, round_size

MIB = 1 << 20


def test_requests_round_up_to_512_bytes():
    assert [round_size(n) for n in (1, 512, 513, 4096)] == [512, 512, 1024, 4096]


@pytest.mark.parametrize("expandable", [False, True])
def test_small_requests_share_one_2_mib_segment(expandable):
    allocator = CachingAllocator(expandable)
    for key in range(3):
        allocator.malloc(key, 1000)
    assert allocator.reserved == 2 * MIB and allocator.allocated == 3 * 1024


def test_a_mid_sized_request_gets_a_20_mib_segment_that_the_next_reuses():
    allocator = CachingAllocator()
    allocator.malloc("a", 5 * MIB)
    allocator.malloc("b", 5 * MIB)  # from the 15 MiB left of the first segment, split off
    assert allocator.reserved == 20 * MIB and allocator.allocated == 10 * MIB


def test_a_block_too_small_for_the_next_request_makes_a_new_segment_by_default():
    allocator = CachingAllocator()
    allocator.malloc("a", 100 * MIB)
    allocator.free("a")
    allocator.malloc("b", 60 * MIB)  # best fit: the cached 100 MiB block, split (40 MiB left free)
    allocator.malloc("c", 50 * MIB)  # no free block of 50 MiB: a new segment
    assert allocator.reserved == 150 * MIB and allocator.peak_allocated == 110 * MIB


def test_expandable_segments_grow_the_free_end_instead():
    allocator = CachingAllocator(expandable=True)
    allocator.malloc("a", 100 * MIB)  # five 20 MiB pages mapped
    allocator.free("a")
    allocator.malloc("b", 60 * MIB)
    allocator.malloc("c", 50 * MIB)  # the free 40 MiB at the end, grown by one page
    assert allocator.reserved == 120 * MIB and allocator.peak_allocated == 110 * MIB


def test_freed_neighbours_merge_and_serve_a_larger_request():
    allocator = CachingAllocator()
    allocator.malloc("whole", 60 * MIB)
    allocator.free("whole")
    for key in ("a", "b", "c"):
        allocator.malloc(key, 20 * MIB)  # three pieces of the one 60 MiB segment
    allocator.free("a")
    allocator.free("b")
    allocator.malloc("d", 40 * MIB)  # a and b merged
    assert allocator.reserved == 60 * MIB


def test_a_freed_key_or_an_empty_request_changes_nothing():
    allocator = CachingAllocator()
    allocator.free("never")
    allocator.malloc("empty", 0)
    assert allocator.reserved == allocator.allocated == 0
