"""dptrack: build DensePose-Track derivatives (flow-propagated labels, flow-pair shards).

The package is split by domain (see README "Layout"): ``formats`` reads annotations,
``frames`` decodes video frames, ``flow`` estimates and checks optical flow,
``propagate`` moves labels along flow, ``shards`` writes and reads the output files,
``beam`` wraps all of it in Apache Beam transforms, ``synth`` renders data with exact truth.
"""

__version__ = "0.1.0"
