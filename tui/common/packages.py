"""A missing Python package, said as one sentence with the command that installs it.

sft-tui's own dependencies (pyproject.toml) cover everything the app and the sub-commands import;
an optional one (`tokenizers` for exact token counts) or a broken environment can still lack a
package, and that is never a traceback: the sentence names the package and the pip command for
*this* interpreter, which works whether sft-tui came from the checkout or a wheel."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

# The source checkout sft-tui runs from (an editable install, `make run`/`make test`), if it is one.
CHECKOUT = Path(__file__).resolve().parents[2]

# Import name -> the name pip installs it under, where the two differ.
PIP_NAMES = {"yaml": "pyyaml", "pynvml": "nvidia-ml-py", "jsonschema_rs": "jsonschema-rs",
             "textual_plotext": "textual-plotext", "huggingface_hub": "huggingface_hub"}


def pip_install_command(package: str) -> str:
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(package)}"


def missing_package_sentence(err: ImportError, needed_for: str = "this") -> str:
    """'sft-tui needs the Python package X for this, and it is not installed: <pip command>'."""
    top = (getattr(err, "name", None) or str(err).split("'")[1 if "'" in str(err) else 0]).split(".")[0]
    package = PIP_NAMES.get(top, top)
    return (f"sft-tui needs the Python package {package} for {needed_for}, and it is not installed "
            f"in {sys.prefix}: {pip_install_command(package)}")


def train_extra_command(checkout: Path | None = CHECKOUT) -> str:
    """The command that installs the training environment (LLaMA-Factory and what `eval` scores
    with: the `train` extra) into this interpreter. sft-tui is not on a package index, so it is the
    extra of the checkout sft-tui runs from; from a wheel, the extra's own requirements."""
    if checkout is not None and (checkout / "pyproject.toml").is_file():
        return f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(f'{checkout}[train]')}"
    from importlib.metadata import PackageNotFoundError, requires

    try:
        wanted = [r.split(";")[0].strip() for r in requires("sft-tui") or []
                  if re.search(r"""extra\s*==\s*["']train["']""", r)]
    except PackageNotFoundError:
        wanted = []
    return f"{shlex.quote(sys.executable)} -m pip install " + " ".join(shlex.quote(r) for r in wanted or ["llamafactory"])
