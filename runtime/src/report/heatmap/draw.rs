//! Drawing a [`Heatmap`] with plotters: cells coloured by value with the value printed in
//! them, row and column labels, a title, a vertical colour scale with its unit, and a line
//! saying what the grey cells' symbols mean.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::colour::{needs_light_text, scale_colour};
use super::font::{glyph_positions, register, FAMILY};
use super::Heatmap;

/// Pixel geometry, from the number of GPUs and the label lengths.
struct Layout {
    cell: u32,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    value_font: u32,
    /// Draw text glyph by glyph (bitmaps; see [`glyph_positions`]).
    per_glyph: bool,
}

const LABEL_FONT: u32 = 14;
const TITLE_FONT: u32 = 18;
const BAR_WIDTH: u32 = 22;
const GREY: RGBColor = RGBColor(224, 224, 224);

impl Layout {
    fn of(map: &Heatmap, per_glyph: bool) -> Layout {
        let n = map.labels.len().max(1) as u32;
        let cell = (640 / n).clamp(40, 80);
        let longest = map
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1) as u32;
        let left = 30 + longest * LABEL_FONT * 6 / 10;
        let top = 80;
        let grid = n * cell;
        let width = (left + grid + 40 + BAR_WIDTH + 110).max(560);
        let height = top + grid + 60;
        Layout {
            cell,
            left,
            top,
            width,
            height,
            value_font: (cell / 4).clamp(10, 16),
            per_glyph,
        }
    }
}

type Area<DB> = DrawingArea<DB, Shift>;

fn text_style(size: u32, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

/// Draws `text` at `at` in `style`; glyph by glyph when `per_glyph`.
fn draw_text<DB: DrawingBackend>(
    root: &Area<DB>,
    text: impl Into<String>,
    (x, y): (i32, i32),
    style: TextStyle<'static>,
    per_glyph: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let text = text.into();
    if !per_glyph {
        return root.draw(&Text::new(text, (x, y), style));
    }
    let (glyphs, width) = glyph_positions(&text, style.font.get_size());
    let start = match style.pos.h_pos {
        HPos::Left => x,
        HPos::Center => x - width / 2,
        HPos::Right => x - width,
    };
    let glyph_style = TextStyle {
        pos: Pos::new(HPos::Left, style.pos.v_pos),
        ..style
    };
    for (c, offset) in glyphs {
        root.draw(&Text::new(
            c.to_string(),
            (start + offset, y),
            glyph_style.clone(),
        ))?;
    }
    Ok(())
}

/// A value as printed in its cell: integers without decimals.
fn value_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.1}")
    }
}

fn draw<DB: DrawingBackend>(root: &Area<DB>, map: &Heatmap, at: &Layout) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (left, top, cell) = (at.left as i32, at.top as i32, at.cell as i32);
    let n = map.labels.len() as i32;
    root.fill(&WHITE).map_err(fail)?;
    draw_text(
        root,
        map.title.clone(),
        (left, 14),
        text_style(TITLE_FONT, BLACK, HPos::Left, VPos::Top),
        at.per_glyph,
    )
    .map_err(fail)?;
    draw_text(
        root,
        "row = from (accessor), column = to (owner)",
        (left, 40),
        text_style(12, RGBColor(90, 90, 90), HPos::Left, VPos::Top),
        at.per_glyph,
    )
    .map_err(fail)?;
    let range = map.range();
    let fraction = |v: f64| match range {
        Some((lo, hi)) if hi > lo => (v - lo) / (hi - lo),
        _ => 0.5,
    };
    for (r, row) in map.cells.iter().enumerate() {
        for (c, cell_value) in row.iter().enumerate() {
            let (x, y) = (left + c as i32 * cell, top + r as i32 * cell);
            let (fill, text) = match cell_value {
                Ok(v) => (scale_colour(fraction(*v)), value_text(*v)),
                Err(symbol) => (GREY, symbol.clone()),
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell - 1, y + cell - 1)],
                fill.filled(),
            ))
            .map_err(fail)?;
            let ink = if needs_light_text(fill) { WHITE } else { BLACK };
            draw_text(
                root,
                text,
                (x + cell / 2, y + cell / 2),
                text_style(at.value_font, ink, HPos::Center, VPos::Center),
                at.per_glyph,
            )
            .map_err(fail)?;
        }
    }
    for (i, label) in map.labels.iter().enumerate() {
        let middle = i as i32 * cell + cell / 2;
        draw_text(
            root,
            label.clone(),
            (left - 8, top + middle),
            text_style(LABEL_FONT, BLACK, HPos::Right, VPos::Center),
            at.per_glyph,
        )
        .map_err(fail)?;
        draw_text(
            root,
            label.clone(),
            (left + middle, top - 6),
            text_style(
                LABEL_FONT.min(at.value_font + 2),
                BLACK,
                HPos::Center,
                VPos::Bottom,
            ),
            at.per_glyph,
        )
        .map_err(fail)?;
    }
    draw_scale(root, map, at, n * cell).map_err(fail)?;
    draw_text(
        root,
        map.note.clone(),
        (left, top + n * cell + 16),
        text_style(12, RGBColor(90, 90, 90), HPos::Left, VPos::Top),
        at.per_glyph,
    )
    .map_err(fail)?;
    root.present().map_err(fail)
}

/// The colour bar right of the grid: low value at the bottom, high at the top.
fn draw_scale<DB: DrawingBackend>(
    root: &Area<DB>,
    map: &Heatmap,
    at: &Layout,
    grid: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let x = at.left as i32 + grid + 40;
    let top = at.top as i32;
    let steps = 64;
    for step in 0..steps {
        let t = 1.0 - step as f64 / (steps - 1) as f64;
        let y0 = top + grid * step / steps;
        let y1 = top + grid * (step + 1) / steps;
        root.draw(&Rectangle::new(
            [(x, y0), (x + BAR_WIDTH as i32, y1)],
            scale_colour(t).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x, top), (x + BAR_WIDTH as i32, top + grid)],
        BLACK.stroke_width(1),
    ))?;
    draw_text(
        root,
        map.unit.clone(),
        (x, top - 6),
        text_style(12, BLACK, HPos::Left, VPos::Bottom),
        at.per_glyph,
    )?;
    let labels = match map.range() {
        Some((lo, hi)) if hi > lo => vec![
            (hi, top),
            ((lo + hi) / 2.0, top + grid / 2),
            (lo, top + grid),
        ],
        Some((only, _)) => vec![(only, top + grid / 2)],
        None => Vec::new(),
    };
    for (value, y) in labels {
        draw_text(
            root,
            value_text(value),
            (x + BAR_WIDTH as i32 + 6, y),
            text_style(12, BLACK, HPos::Left, VPos::Center),
            at.per_glyph,
        )?;
    }
    Ok(())
}

/// The heat-map as an SVG document.
pub fn render_svg(map: &Heatmap) -> Result<String, String> {
    register()?;
    let at = Layout::of(map, false);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (at.width, at.height)).into_drawing_area();
        draw(&root, map, &at)?;
    }
    Ok(svg)
}

/// The heat-map as a PNG file's bytes.
pub fn render_png(map: &Heatmap) -> Result<Vec<u8>, String> {
    register()?;
    let at = Layout::of(map, true);
    let mut pixels = vec![0u8; at.width as usize * at.height as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut pixels, (at.width, at.height)).into_drawing_area();
        draw(&root, map, &at)?;
    }
    let mut file = Vec::new();
    let mut encoder = png::Encoder::new(&mut file, at.width, at.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| e.to_string())?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::super::colour::scale_colour;
    use super::*;

    fn two_by_two() -> Heatmap {
        Heatmap {
            title: "t".to_string(),
            unit: "MB/s".to_string(),
            labels: vec!["a".to_string(), "b".to_string()],
            cells: vec![
                vec![Err("X".to_string()), Ok(10.0)],
                vec![Ok(30.0), Err("X".to_string())],
            ],
            note: "grey".to_string(),
        }
    }

    fn pixel(png: &[u8], (x, y): (u32, u32)) -> RGBColor {
        let decoder = png::Decoder::new(png);
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buffer).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let at = ((y * info.width + x) * 3) as usize;
        RGBColor(buffer[at], buffer[at + 1], buffer[at + 2])
    }

    #[test]
    fn png_cells_take_the_scale_colour_of_their_value() {
        let map = two_by_two();
        let png = render_png(&map).unwrap();
        let at = Layout::of(&map, true);
        let corner = |r: u32, c: u32| (at.left + c * at.cell + 2, at.top + r * at.cell + 2);
        assert_eq!(pixel(&png, corner(0, 0)), GREY, "diagonal");
        assert_eq!(pixel(&png, corner(0, 1)), scale_colour(0.0), "lowest value");
        assert_eq!(
            pixel(&png, corner(1, 0)),
            scale_colour(1.0),
            "highest value"
        );
    }

    #[test]
    fn svg_has_a_cell_per_pair_and_every_label() {
        let svg = render_svg(&two_by_two()).unwrap();
        let document = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let texts: Vec<&str> = document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::trim))
            .collect();
        for expected in ["t", "a", "b", "10", "30", "X", "MB/s", "grey"] {
            assert!(
                texts.contains(&expected),
                "{expected:?} missing from {texts:?}"
            );
        }
        let (lo, hi) = (scale_colour(0.0), scale_colour(1.0));
        let fill = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let rects: Vec<String> = document
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .filter_map(|n| n.attribute("fill").map(str::to_string))
            .collect();
        assert!(
            rects.contains(&fill(lo)) && rects.contains(&fill(hi)),
            "{rects:?}"
        );
    }
}
