"""What the benchmarks in ``benchmarks/`` measure, as functions the scripts call.

The scripts only parse their options, call these and print; the measuring, the data they make up
and the tables live here, where they are tested (``tests/benchmarks``, ``tests/perf``).

* :mod:`.timing`: timing calls, peak resident memory, Markdown tables.
* :mod:`.results`: a run's results, clock and time budget, written to JSON as it goes.
* :mod:`.images`: reading an image file as RGB.
* :mod:`.device`: which torch device, what it is, the memory a configuration used, and
  surviving an out-of-memory error.
* FlowNet2 (``benchmarks/bench_flownet2.py``): :mod:`.flownet2_suite` (the ordered run, and what
  each number means), :mod:`.flownet2_settings` (sizes, batches, defaults), :mod:`.flownet2`
  (one configuration's speed, FLOPs and memory), :mod:`.sintel` (bf16 accuracy on Sintel),
  :mod:`.flownet2_report` (the Markdown table and the comparison with the public port).
* Shard reading (``benchmarks/bench_reader.py``): :mod:`.reader` (the run: data, loaders,
  ratios, the same-samples check), :mod:`.annotations` (made-up labels on a real video),
  :mod:`.jpeg_json` (the JPEG + JSON baseline format and its loader).

Importing this package imports nothing heavy; each module imports what it measures.
"""
