"""A local copy of the AutoDL challenge programs: ingestion, scoring, and a runner for both."""
