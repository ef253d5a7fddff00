"""Measuring a run against ground truth: pure scores over label stacks and tables."""
