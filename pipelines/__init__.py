"""Beam pipeline definitions: ``build_*(pipeline, config)`` plus ``run()``; the CLI and remote
launches (Dataflow, Flink, Spark) both call these."""
