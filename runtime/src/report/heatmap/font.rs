//! The text font, compiled in: plotters' ab_glyph backend needs one registered, and a fresh
//! Debian (CI, a minimal server) may have no fonts at all. DejaVu Sans, Bitstream Vera
//! licence (runtime/assets/fonts/DejaVu-LICENSE).

use std::sync::OnceLock;

use plotters::style::FontStyle;

static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family name the drawing uses.
pub const FAMILY: &str = "sans-serif";

/// Registers the font (once per process); an error if it does not parse.
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let parsed = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if parsed {
        Ok(())
    } else {
        Err("the compiled-in font does not parse".to_string())
    }
}

/// Where each character of `text` starts, in pixels from the text's origin at `size`, and the
/// text's width. plotters' ab_glyph renderer places a glyph's pixels at the pen position
/// without its left side bearing (digits such as `1` then sit apart from the next glyph), so
/// bitmap text is drawn glyph by glyph at `start + bearing` (the bearing is included here).
pub fn glyph_positions(text: &str, size: f64) -> (Vec<(char, i32)>, i32) {
    use ab_glyph::{Font, FontRef, ScaleFont};
    let Ok(font) = FontRef::try_from_slice(DEJAVU_SANS) else {
        return (Vec::new(), 0);
    };
    let font = font.as_scaled(size as f32);
    let mut pen = 0f32;
    let mut previous = None;
    let mut positions = Vec::new();
    for c in text.chars() {
        let glyph = font.glyph_id(c);
        if let Some(previous) = previous {
            pen += font.kern(previous, glyph);
        }
        let bearing = font
            .outline_glyph(font.scaled_glyph(c))
            .map_or(0.0, |outline| outline.px_bounds().min.x);
        positions.push((c, (pen + bearing).round() as i32));
        pen += font.h_advance(glyph);
        previous = Some(glyph);
    }
    (positions, pen.round() as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_font_registers() {
        assert_eq!(super::register(), Ok(()));
    }

    #[test]
    fn glyphs_advance_by_the_fonts_metrics() {
        let (glyphs, width) = super::glyph_positions("10", 20.0);
        let starts: Vec<char> = glyphs.iter().map(|(c, _)| *c).collect();
        assert_eq!(starts, ['1', '0']);
        // DejaVu digits are 0.636 em wide; ab_glyph's scale is the line height (1.164 em).
        assert!((21..=23).contains(&width), "{width}");
        assert!(glyphs[1].1 > glyphs[0].1 + 5, "{glyphs:?}");
    }
}
