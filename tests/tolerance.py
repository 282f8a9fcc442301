"""Trained figures, compared within a band: the numeric tolerance nbval uses for a notebook cell.

A figure that comes from training moves on another CPU: float sums round in another order, a long
training run's trajectory drifts, and the figure lands anywhere in its seed-to-seed spread. The
student's cell prints such a figure plainly (``f"{loss:.1f}"``); its band lives in the cell's
metadata, where a student does not read it:

    "metadata": {"tolerance": [0, 1.5, 1.5, 0.4]}

one band per number in the cell's stored text output, in the order the notebook file stores them
(stdout, stderr and ``text/plain`` alike): ``0`` keeps a number exact, ``b`` lets the fresh figure lie within ``± b`` of the stored one.
``scripts/measure_bands.py`` writes these lists from the spread of each figure over several training
seeds. Everything else in the output, text and exact numbers, is compared as nbval always does.

How: before nbval compares a cell, each fresh number that lies within its band of the stored number
is written as the stored text. A figure outside its band, or output with other words or another count
of numbers, is left as it came, so nbval's own comparison fails and shows both. A band list whose
length is not the count of numbers in the stored output fails the cell with a message saying so.
"""

import copy
import math
import re

#: A printed number: an optional sign, digits with optional thousands commas, an optional decimal part.
NUMBER = re.compile(r"(?<![\w.])[-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|(?<![\w.])[-−]?\d+(?:\.\d+)?")
#: The output fields whose numbers are compared within the bands.
TEXT_FIELDS = ("text/plain",)


class ToleranceError(AssertionError):
    """A cell's tolerance metadata does not fit its stored output."""


def numbers(text):
    """The numbers printed in ``text``, in order, as ``(start, end, value)``."""
    return [(m.start(), m.end(), float(m.group().replace(",", "").replace("−", "-")))
            for m in NUMBER.finditer(text)]


def _texts(outputs):
    """The text pieces of outputs, as (output index, field or None for a stream, text), in order."""
    pieces = []
    for i, out in enumerate(outputs):
        if out.get("output_type") == "stream":
            pieces.append((i, None, out.get("text", "")))
        else:
            for field in TEXT_FIELDS:
                if field in out.get("data", {}):
                    pieces.append((i, field, out["data"][field]))
    return pieces


def count_numbers(outputs):
    """How many numbers the outputs print (the length a band list must have)."""
    return sum(len(numbers(text)) for _, _, text in _texts(outputs))


def check_bands(bands, stored_outputs):
    """Raise :class:`ToleranceError` unless ``bands`` is a list of non-negative finite numbers, one per
    number in ``stored_outputs``."""
    if not isinstance(bands, list) or not all(isinstance(b, (int, float)) and math.isfinite(b) and b >= 0
                                              for b in bands):
        raise ToleranceError(f"tolerance metadata must be a list of bands >= 0, got {bands!r}")
    expected = count_numbers(stored_outputs)
    if len(bands) != expected:
        raise ToleranceError(f"tolerance metadata lists {len(bands)} bands, but the stored output prints "
                             f"{expected} numbers: re-measure with scripts/measure_bands.py")


def align(fresh_outputs, stored_outputs, bands):
    """``fresh_outputs`` with every number that lies within its band of the stored one written as stored.

    Outputs with a different count of numbers are returned unchanged (nbval then reports the difference).
    Returns a new list; the inputs are not modified.
    """
    check_bands(bands, stored_outputs)
    fresh_pieces, stored_pieces = _texts(fresh_outputs), _texts(stored_outputs)
    fresh_numbers = [numbers(text) for _, _, text in fresh_pieces]
    stored_numbers = [numbers(text) for _, _, text in stored_pieces]
    if [len(n) for n in fresh_numbers] != [len(n) for n in stored_numbers]:
        return fresh_outputs
    aligned = copy.deepcopy(fresh_outputs)  # nbval's outputs are NotebookNodes: keep their type
    band = iter(bands)
    for (i, field, text), fresh, (_, _, stored_text), stored in zip(fresh_pieces, fresh_numbers,
                                                                    stored_pieces, stored_numbers):
        parts, last = [], 0
        for (start, end, value), (s_start, s_end, s_value) in zip(fresh, stored):
            b = next(band)
            parts.append(text[last:start])
            within = b > 0 and abs(value - s_value) <= b + 1e-9
            parts.append(stored_text[s_start:s_end] if within else text[start:end])
            last = end
        parts.append(text[last:])
        new_text = "".join(parts)
        if field is None:
            aligned[i]["text"] = new_text
        else:
            aligned[i]["data"][field] = new_text
    return aligned


def compare_order(bands, outputs):
    """``bands``, listed in the file order of ``outputs``, in the order nbval compares the numbers.

    nbval joins every stream of one name into its first place (``coalesce_streams``): a cell that prints,
    shows a progress bar, then prints again, is compared as [all of stdout, progress bar]. The bands
    move with their numbers.
    """
    check_bands(bands, outputs)
    rest = iter(bands)
    places, streams = [], {}
    for out in outputs:
        own = [next(rest) for _ in range(count_numbers([out]))]
        if out.get("output_type") == "stream":
            if out.get("name") in streams:
                streams[out.get("name")].extend(own)
                continue
            streams[out.get("name")] = own
        places.append(own)
    return [b for place in places for b in place]


def merge_streams(outputs):
    """Consecutive stream outputs of the same name joined into one, as nbval compares them."""
    merged = []
    for out in copy.deepcopy(outputs):
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def install():
    """Make nbval compare cells that carry ``tolerance`` metadata within their bands (idempotent)."""
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "_with_tolerance", False):
        return
    original, original_runtest = IPyNbCell.compare_outputs, IPyNbCell.runtest

    def runtest(self):
        # nbval joins the stored streams in place before comparing: keep the file's order for the bands
        self.stored_outputs_in_file_order = copy.deepcopy(self.cell.get("outputs", []))
        return original_runtest(self)

    def compare_outputs(self, test, ref, skip_compare=None):
        bands = self.cell.metadata.get("tolerance")
        if bands is not None:
            test, ref = merge_streams(test), merge_streams(ref)
            try:
                bands = compare_order(bands, getattr(self, "stored_outputs_in_file_order", ref))
                test = align(test, ref, bands)
            except ToleranceError as e:
                self.comparison_traceback = [str(e)]
                return False
        return original(self, test, ref, skip_compare)

    compare_outputs._with_tolerance = True
    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell.runtest = runtest
