//! Statistics of measured samples, written once for every program that measures: the benchmark
//! (`device::bench`), the isolation tests' timings (hwtests) and the bring-up times (xtask).

use std::cmp::Ordering;

/// The median of `samples`, in any order: the middle value once sorted, and for an even count
/// the upper of the two middle values. It is always one of the samples, never the mean of two,
/// so it exists for any ordered type (`Duration`, integers, `f64`). `None` when there are no
/// samples, or when two of them cannot be ordered (a NaN).
pub fn median<T: PartialOrd + Copy>(samples: &[T]) -> Option<T> {
    if samples
        .iter()
        .any(|sample| sample.partial_cmp(sample).is_none())
    {
        return None;
    }
    let mut sorted = samples.to_vec();
    // Every sample is comparable with itself: no NaN, so the order is total.
    sorted.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn median_of_integers() {
        // (samples, median)
        let cases: &[(&[i64], Option<i64>)] = &[
            (&[], None),
            (&[7], Some(7)),
            (&[1, 2, 3], Some(2)),
            (&[3, 1, 2], Some(2)),
            // Even count: the upper middle value.
            (&[1, 2, 3, 4], Some(3)),
            (&[4, 1, 3, 2], Some(3)),
            (&[2, 1], Some(2)),
            (&[5, 5, 1, 5], Some(5)),
            (&[1, 1, 9, 9, 9], Some(9)),
            (&[-3, 10, -7], Some(-3)),
            // One outlier does not move it.
            (&[10, 11, 12, 1000, 13], Some(12)),
        ];
        for (samples, expected) in cases {
            assert_eq!(median(samples), *expected, "median of {samples:?}");
        }
    }

    #[test]
    fn median_of_durations_and_floats() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(30), ms(10), ms(20), ms(40)]), Some(ms(30)));
        assert_eq!(median::<Duration>(&[]), None);
        assert_eq!(median(&[0.5, -1.0, 2.5]), Some(0.5));
        assert_eq!(median(&[0.01, 0.01, 0.48, 0.01]), Some(0.01));
    }

    #[test]
    fn a_nan_has_no_median() {
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), None);
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn the_samples_are_left_as_they_were() {
        let samples = [3, 1, 2];
        median(&samples);
        assert_eq!(samples, [3, 1, 2]);
    }
}
