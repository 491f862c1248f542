"""Benchmarks (outside the processing flow): streamrules against peer rule engines
(CLIPS via clipspy, durable-rules, experta, py-rete 0.0.6, plain Python) on the same
workloads, and the replay benchmark of the whole pipeline.

Run ``python -m benchmarks --help``. Never part of the test suite.
"""
