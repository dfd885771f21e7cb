"""The app's DataTable: Textual's, with its header redrawn once new rows are measured.

Textual 8.2's DataTable measures added rows' column widths on its next idle, but keeps the lines
it rendered before then (the header among them) in its caches, keyed without the widths: a header
drawn between `add_row` and that idle stays at the old widths above wider rows until something
else clears the caches. tests/app/test_table.py shows the bug on Textual's own table.
"""

from __future__ import annotations

from textual.widgets import DataTable


class Table(DataTable):
    def _update_dimensions(self, new_rows) -> None:
        super()._update_dimensions(new_rows)
        self._clear_caches()  # the widths just changed: what was drawn at the old ones goes
        self.refresh()
