"""The quality report of an output folder: ``dptrack-build report SHARDS --out report.html``.

One self-contained HTML file (inline styles, images as ``data:`` PNGs, no script, nothing
fetched) that shows what a ``run`` or ``pairs`` folder holds and how good it is, and optionally
the same numbers as JSON. One module per question:

* :mod:`~dptrack_pipeline.report.figures` - the numbers of a ``run`` folder (pure, from the tables
  and the manifest); :mod:`~dptrack_pipeline.report.pairs_figures` - those of a ``pairs`` folder;
  :mod:`~dptrack_pipeline.report.columns` - the column helpers they share.
* :mod:`~dptrack_pipeline.report.charts` - matplotlib charts of those numbers, as PNG bytes.
* :mod:`~dptrack_pipeline.report.gallery` - pictures of single instances and pairs from the dense
  crops (OpenCV).
* :mod:`~dptrack_pipeline.report.html` - the HTML blocks; :mod:`~dptrack_pipeline.report.pages`
  and :mod:`~dptrack_pipeline.report.pairs_page` - what is on each page.
* :mod:`~dptrack_pipeline.report.build` - reading a folder and writing the files.

It reads the shards through :mod:`dptrack_pipeline.shards` and reuses the jobs' summaries
(:mod:`dptrack_pipeline.propagate.summary`, :mod:`dptrack_pipeline.pairs.summary`); nothing
below it imports it.
"""

from dptrack_pipeline.report.build import build_report

__all__ = ["build_report"]
