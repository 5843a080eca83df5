"""Cells of the CSV files the hub writes, made safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is read by spreadsheets as a formula, so a POS that sends ``=cmd|' /C calc'!A0``
as a SKU could run it on the shopkeeper's computer. Following OWASP's
CSV-injection guidance, such a text cell is prefixed with a single quote,
which spreadsheets show as text. Only text is touched: numbers stay numbers
(a return's quantity of -1 is not a formula), and JSON exports stay exact.
"""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """``cell`` as it may go into a CSV file."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell
