"""Where the classifier looks: the class maps of its most confident right answers and of its worst errors on the
most confused class pairs, from a :class:`~transferlab.analysis.looks.LooksRecord` given to the builder."""
from __future__ import annotations

from pathlib import Path

from transferlab.analysis.looks import LooksRecord
from transferlab.plots import data_uri
from transferlab.plots.cam import draw_class_maps
from transferlab.report.sections.common import PART2, Section, Todo

TITLE = "Where the classifier looks"
COMMAND = "transferlab explain MODEL_DIR IMAGE… --figure looks.png"
TODO = "transferlab run --data DATA … --save MODEL_DIR, then transferlab report … MODEL_DIR"


def looks(record: LooksRecord | None, why_missing: str = "") -> Section:
    """The section of ``record``; without one, a 'not measured' box saying ``why_missing``."""
    if record is None:
        what = "the class maps of test images" + (f" ({why_missing})" if why_missing else "")
        todo = Todo("looks", what, TODO)
        return Section(PART2, "looks", TITLE, "looks.html.j2", {"missing": todo}, [todo])
    images = [{"kind": x.kind, "true": x.true, "predicted": x.predicted, "top": x.top,
               "name": f"{Path(x.maps.image).parent.name}/{Path(x.maps.image).name}",
               "figure": data_uri(draw_class_maps([x.maps], truths=[x.true]), dpi=90)} for x in record.looked]
    return Section(PART2, "looks", TITLE, "looks.html.j2",
                   {"r": record, "command": COMMAND, "confused": [i for i in images if i["kind"] == "confused"],
                    "correct": [i for i in images if i["kind"] == "correct"]})
