"""Statistics helpers of bench/run.py and bench/report.py."""

import statistics


def median(xs):
    """Median of a list, or None if it is empty."""
    return statistics.median(xs) if xs else None


def spread(xs):
    """(min, max) of a list, or None if it is empty."""
    return (min(xs), max(xs)) if xs else None


def pct(xs, p):
    """The @p-th percentile (0 to 100) of a list: its element p % of the
    way through it sorted, or None if it is empty."""
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))]
