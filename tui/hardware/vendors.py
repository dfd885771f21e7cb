"""The registry of vendors (tui/hardware/vendor.py's protocol): one entry per vendor module, in the
order detection probes them, the CPU last. A new vendor is one module defining VENDOR plus its line
here; hardware profiles and plan.json name a vendor by its `name` (schemas/ list the same names)."""

from __future__ import annotations

from tui.common.errors import SftTuiError
from tui.hardware import amd, apple, cpu, nvidia
from tui.hardware.vendor import Vendor

VENDORS: dict[str, Vendor] = {module.VENDOR.name: module.VENDOR for module in (
    nvidia,
    amd,
    apple,
    cpu,  # always there: the last resort, probed last
)}


class UnknownVendor(SftTuiError):
    """A device, profile or plan.json names a vendor the registry does not list."""


def vendor_of(name: str) -> Vendor:
    try:
        return VENDORS[name]
    except KeyError:
        raise UnknownVendor(f"unknown vendor {name!r}: sft-tui knows {', '.join(VENDORS)}") from None
