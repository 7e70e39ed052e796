"""Apache Beam wrappers (DoFns, combiners) around the dptrack library; no maths here."""
