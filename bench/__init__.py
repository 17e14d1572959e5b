"""Benchmarks that print figures (and ratios against a baseline measured in the same run).

They are not tests: nothing here passes or fails on a number. Run all with ``make bench`` or
one with ``python -m bench.<name>``.
"""
