//! The colour scale: viridis (perceptually uniform, readable in grey and by most colour-blind
//! readers), interpolated between five of its stops.

use plotters::style::RGBColor;

const VIRIDIS: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

/// The colour of `t` in 0..=1 (clamped).
pub fn scale_colour(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let position = t * (VIRIDIS.len() - 1) as f64;
    let index = (position.floor() as usize).min(VIRIDIS.len() - 2);
    let fraction = position - index as f64;
    let (a, b) = (VIRIDIS[index], VIRIDIS[index + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * fraction).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Whether text on `colour` should be white (dark background).
pub fn needs_light_text(colour: RGBColor) -> bool {
    let RGBColor(r, g, b) = colour;
    0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64 <= 140.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_from_dark_purple_to_yellow() {
        assert_eq!(scale_colour(0.0), RGBColor(68, 1, 84));
        assert_eq!(scale_colour(1.0), RGBColor(253, 231, 37));
        assert_eq!(scale_colour(0.5), RGBColor(33, 145, 140));
        assert_eq!(scale_colour(f64::NAN), scale_colour(0.0));
        assert!(needs_light_text(scale_colour(0.0)));
        assert!(!needs_light_text(scale_colour(1.0)));
    }
}
