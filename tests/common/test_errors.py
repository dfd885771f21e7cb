"""Every error kind sft-tui defines is an SftTuiError (tui/common/errors.py): a front end catches
that one base to word what the core says."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from tui.common.errors import SftTuiError

TUI = Path(__file__).resolve().parents[2] / "tui"


def test_every_error_kind_is_an_sft_tui_error():
    kinds = []
    for path in sorted(TUI.rglob("*.py")):
        rel = path.relative_to(TUI.parent).with_suffix("")
        if "lf" in rel.parts or "_data" in rel.parts:  # run in the training environment, never imported
            continue
        module = importlib.import_module(".".join(rel.parts).removesuffix(".__init__"))
        kinds += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == module.__name__]
    assert len(kinds) >= 15
    assert not [k.__qualname__ for k in kinds if not issubclass(k, SftTuiError)]
