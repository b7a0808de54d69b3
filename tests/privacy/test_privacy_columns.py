"""Decoding states to values: integers stay integers inside their bin, nulls are nulls, categories are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsynth.tools.privacy.columns import Column, decode, encode, states_frame
from causalsynth.tools.privacy.cpts import project_to_simplex
from causalsynth.tools.privacy.domain import (
    PublicBounds,
    _trimmed,
    _zoomed,
    cuts_from_histogram,
    noisy_points,
    numeric_spec,
    with_points,
)
from causalsynth.tools.privacy.mechanisms import gaussian_scale
from causalsynth.tools.privacy.schema import NULL_STATE, ColumnSpec


def test_integer_bins_decode_to_integers_inside_each_bin() -> None:
    # Setup
    spec = numeric_spec(Column("n", "integer"), 0, 10, [1, 4], has_null=True)
    states = np.array([b.state for b in spec.bins] * 500 + [NULL_STATE] * 100, dtype=object)

    # Run
    values = decode(states, spec, np.random.default_rng(0))

    # Assert
    assert str(values.dtype) == "Int64"
    assert values.isna().sum() == 100
    first = values[states == spec.bins[0].state]
    assert set(first) == {0}  # [0, 1) holds one integer
    last = values[states == spec.bins[-1].state]
    assert set(last) == set(range(4, 11))  # the closed last bin reaches the bound


def test_encode_puts_values_in_their_bins_and_back() -> None:
    # Setup
    spec = numeric_spec(Column("x", "float"), 0.0, 100.0, [10.0, 50.0], has_null=False)
    values = pd.Series([0.0, 9.99, 10.0, 49.0, 50.0, 100.0])

    # Run
    codes = encode(values, spec, spec.bins[0].state)
    states = states_frame(pd.DataFrame({"x": values}), {"x": spec})["x"]

    # Assert
    assert codes.tolist() == [0, 0, 1, 1, 2, 2]
    assert states.tolist() == [spec.bins[c].state for c in codes]


def test_boolean_and_category_decode() -> None:
    # Setup
    flag = ColumnSpec(kind="boolean", categories={"false": "false", "true": "true"})
    colour = ColumnSpec(kind="category", categories={"red": "red", "blue": "blue"}, null_state=NULL_STATE)

    # Run
    flags = decode(np.array(["true", "false"], dtype=object), flag, np.random.default_rng(0))
    colours = decode(np.array(["red", NULL_STATE], dtype=object), colour, np.random.default_rng(0))

    # Assert
    assert flags.tolist() == [True, False]
    assert colours[0] == "red" and pd.isna(colours[1])


def test_histogram_post_processing_drops_noise_cells() -> None:
    # Setup: true mass in cells 10..20 of 200; pure noise elsewhere
    rng = np.random.default_rng(0)
    edges = np.arange(201, dtype=float)
    noisy = rng.normal(0, 5, 200)
    noisy[10:21] += 300

    # Run
    low, high, cuts = cuts_from_histogram(edges, noisy, 4, 5.0, "integer")

    # Assert
    assert (low, high) == (10.0, 20.0)
    assert cuts == sorted(cuts) and all(10 <= c <= 21 for c in cuts)


def test_a_spread_tail_next_to_the_range_stays_inside_it() -> None:
    # Setup: 10 dense cells, and below them 6 cells of 80 rows each: no single cell stands out of noise scale 40
    # (threshold about 160), so the search alone would start the range at cell 10 and clip 480 rows into it
    # (wa_churn's tenure below 10 at epsilon 0.3); above the dense cells, nothing (exact zeros)
    edges = np.arange(31, dtype=float)
    noisy = np.zeros(30)
    noisy[10:20] = 1000.0
    noisy[4:10] = 80.0

    # Run
    low, high, _ = cuts_from_histogram(edges, noisy, 4, 40.0, "float", groups=(1,))
    no_tail = noisy.copy()
    no_tail[4:10] = [30.0, -40.0, 20.0, -10.0, 25.0, -30.0]  # noise around zero: no rows there
    low_clean, high_clean, _ = cuts_from_histogram(edges, no_tail, 4, 40.0, "float", groups=(1,))

    # Assert: the tail's cells join the range; noise around zero and empty cells do not
    assert (low, high) == (4.0, 20.0)
    assert (low_clean, high_clean) == (10.0, 20.0)


def test_a_noisy_dip_inside_the_data_does_not_cut_the_zoomed_range() -> None:
    # Setup: 32 zoom cells over [0, 320); a fifth of the rows and more in cell 0 (the zoom fires), 150 rows in each
    # of cells 1-20 but a noisy -30 in cell 10 (the projection empties it), no rows above cell 20
    rho = 5e-5
    sigma = gaussian_scale(rho)
    fine = np.arange(33, dtype=float) * 10
    zoom = np.zeros(32)
    zoom[0] = 2000.0
    zoom[1:21] = 150.0
    zoom[10] = -30.0

    # Run
    z = _zoomed(Column("x", "float"), fine, zoom, 0.0, 320.0, PublicBounds(), {}, rho)

    # Assert: the range keeps the rows above the dip (cells 11-20 end at 210; a cell or two of the empty ones above
    # may come along) and still drops most of the empty cells
    assert sigma > 50  # the rows past the dip stand out only together, not cell by cell (4 noise scales each)
    assert z.counts is None  # new cells: the zoom fired
    assert 210.0 <= z.high <= 250.0


def test_rows_spread_thin_beyond_a_zoomed_peak_keep_their_range() -> None:
    # Setup: a zoom release of loans' loan_amount at epsilon 1 (7,000 rows from 1,000 to 40,000; 709 of them at
    # 10,000), captured from a fit whose range came out as [9506, 11138]: the cell holding the 10,000 spike stands
    # out, the cells around it hold about 200 rows each under a noise scale of 175, so none of them stands out alone
    rho = 0.0006881 / 42
    fine = np.array([2000, 3151, 4302, 5329, 6165, 7000, 7836, 8671, 9506, 10331, 11139, 11947, 12755, 13564, 14372,
                     15180, 15988, 16796, 17605, 18413, 19221, 20098, 22817, 25535, 28253, 30972, 33690, 36408, 39127,
                     41845, 44563, 47282, 50000], dtype=float)  # fmt: skip
    zoom = np.array([348, 153, 118, 473, 167, 74, 35, -122, 1063, 70, -118, -20, 54, -88, 44, -192, 481, 24, 270, 143,
                     567, -83, 422, 66, 190, 440, 485, 55, 285, -127, -27, -99], dtype=float)  # fmt: skip

    # Run
    z = _zoomed(Column("loan_amount", "integer"), fine, zoom, 2000.0, 49999.0, PublicBounds(), {}, rho)

    # Assert: the zoom fires (new cells) but keeps both sides, whose cells hold 1,246 and 2,900 rows together
    assert gaussian_scale(rho) > 150
    assert z.counts is None
    assert z.low <= 3000.0 and z.high >= 40000.0


def test_a_bin_whose_cells_hold_mostly_noise_decodes_uniformly() -> None:
    # Setup: a bin [0, 100) over 10 shape cells of 5 rows each, released with a noise scale of 100 per cell (a
    # sparse column at epsilon 1); one cell's noise stands at +180
    edges = np.linspace(0.0, 100.0, 11)
    noisy = 5.0 + np.array([-40.0, 20, -50, 60, -90, 10, 180, -30, 45, -20])

    # Run
    unaware = noisy_points(edges, noisy, 0.0, 100.0, False, "float")  # the noise scale not known
    points = noisy_points(edges, noisy, 0.0, 100.0, False, "float", sigma=100.0)

    # Assert: read as rows, the noise would put every value of the bin in [60, 70]; its sum (135) does not stand
    # out of its noise (2 x 100 x sqrt(10)), so the bin decodes uniformly
    assert unaware is not None and 60.0 <= unaware[1] and unaware[-1] <= 70.0
    assert points is None


def test_a_bin_whose_rows_stand_out_keeps_their_shape() -> None:
    # Setup: the same cells holding 900 rows each in the lower half, noise scale 10
    edges = np.linspace(0.0, 100.0, 11)
    noisy = np.array([900.0, 905, 890, 910, 895, 3, -8, 12, -5, 2])

    # Run
    points = noisy_points(edges, noisy, 0.0, 100.0, False, "float", sigma=10.0)

    # Assert: the median point lies in the lower half, where the rows are (uniform would put it at 50)
    assert points is not None
    assert 20.0 <= points[len(points) // 2] <= 30.0


def test_a_zoomed_columns_last_bin_ends_where_its_rows_end_not_in_the_noise_beyond() -> None:
    # Setup: the last bin [2008, 2144) of integer years over 5-year shape cells (a zoom cell's width past the data);
    # the rows end in the cell [2013, 2018), the 25 cells beyond hold noise alone (scale 100 per cell)
    edges = np.arange(2008.0, 2149.0, 5.0)
    noisy = np.concatenate([[1057.0, 517.0], np.random.default_rng(0).normal(0.0, 100.0, 26)])

    # Run
    as_released = noisy_points(edges, noisy, 2008.0, 2144.0, True, "integer")
    points = noisy_points(edges, noisy, 2008.0, 2144.0, True, "integer", sigma=100.0, outer=(False, True))

    # Assert: the projection keeps the noise's positive part, and the inverse CDF's last points lie far in it; cut
    # past the last cell that stands out, every point is inside the rows' cells
    assert as_released is not None and as_released[-1] > 2040.0
    assert points is not None and points[-1] <= 2018.0
    assert points[0] == 2008.0


def test_an_outer_bin_cuts_noise_only_at_its_released_end() -> None:
    # Setup: the first bin [0, 100) whose rows sit in its upper cells; its lower cells (the released range's end)
    # hold noise alone, and so does one cell at its inner end
    edges = np.linspace(0.0, 100.0, 11)
    noisy = np.array([40.0, -30, 55, -10, 20, 800, 900, 850, 700, 35])

    # Run
    low_end = noisy_points(edges, noisy, 0.0, 100.0, False, "float", sigma=30.0, outer=(True, False))
    high_end = noisy_points(edges, noisy, 0.0, 100.0, False, "float", sigma=30.0, outer=(False, True))

    # Assert: read from the low end, the values start where the rows do; the inner end is not cut
    assert low_end is not None and low_end[0] >= 50.0 and low_end[-1] == 100.0
    assert high_end is not None and high_end[0] < 50.0 and high_end[-1] <= 90.0


def test_outer_bins_end_where_their_decoding_points_reach() -> None:
    # Setup: one closed integer bin [0, 20] whose (noisy) points put every value between 3.2 and 7.9
    col = Column("n", "integer")
    spec = with_points(numeric_spec(col, 0.0, 20.0, [], has_null=False), [[3.2, 4.0, 5.0, 6.0, 7.9]])

    # Run
    trimmed = _trimmed(spec)

    # Assert: both ends move in (the one bin is first and last), and the label says so
    assert trimmed.bins is not None and len(trimmed.bins) == 1
    assert (trimmed.bins[0].low, trimmed.bins[0].high) == (3.0, 7.0)
    assert trimmed.bins[0].state == "3 to 7"


def test_projection_keeps_a_total_below_the_values_rounding() -> None:
    # Setup: noisy cell counts whose sum is a rounding residue (CI: the range audit's fit raised IndexError here)
    values = np.array([13.5, 3.0, -3.5, -5.5, -5.0, -2.5])
    total = float(values.sum() + 4.440892098500626e-16)

    # Run
    out = project_to_simplex(values, total)

    # Assert
    assert (out >= 0).all() and out.sum() == total
    assert project_to_simplex(values, 6.0).sum() == 6.0 and (project_to_simplex(values, 6.0) >= 0).all()
