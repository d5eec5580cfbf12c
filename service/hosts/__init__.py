"""The host's own views: metrics over any window, read from the tables the aggregators keep."""
