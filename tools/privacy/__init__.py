"""Learning a spec from a real table with differential privacy.

Budget accounting, OpenDP measurements, private discretisation, private structure selection, noisy CPTs, and
decoding states back to typed values.

Only the measurement step touches the rows; everything after it is post-processing of released statistics.
"""
