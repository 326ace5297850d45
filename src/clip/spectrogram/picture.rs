//! Quick-look PNG: a [`SpectrogramClip`] + a title → the bytes of an RGB PNG.
//!
//! The PSD is drawn with time to the right and frequency upwards (low frequencies at the
//! bottom), coloured with viridis between robust limits (2nd and 98th percentiles of the
//! finite dB values, so a few extreme cells do not wash the picture out); NaN and -Inf cells
//! (gaps, the DC row) are a neutral grey. The plot is at most 1200 × 600 pixels: when there are
//! more columns (or bins) than pixels each pixel shows the **maximum** of the cells it covers,
//! so short loud events stay visible; small clips are enlarged by repeating cells. Axes carry
//! UTC clock-time ticks (HH:MM:SS) and frequency ticks in kHz; a colour bar shows the dB scale.
//!
//! Text uses a built-in 5×7 bitmap font (digits, capitals, a little punctuation; lower case is
//! drawn as capitals): a font crate would be far more than tick labels need.
//!
//! Errors ([`RenderError`]): an empty clip, arrays that disagree with the clip's shape, or the
//! PNG encoder failing.

use super::SpectrogramClip;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RenderError {
    #[error("draw spectrogram: the clip has no cells ({nfreq} frequencies × {ncols} times)")]
    Empty { nfreq: usize, ncols: usize },
    #[error(
        "draw spectrogram: the clip's arrays do not match its shape ({psd} PSD values, {nfreq} frequencies × {ncols} times, {frequencies} frequency values)"
    )]
    Shape {
        psd: usize,
        nfreq: usize,
        ncols: usize,
        frequencies: usize,
    },
    #[error("encode spectrogram PNG: {0}")]
    Encode(String),
}

/// Plot area limits in pixels: enlarge small clips to at least the minimum, reduce large ones
/// to the maximum.
const PLOT_WIDTH: (usize, usize) = (400, 1200);
const PLOT_HEIGHT: (usize, usize) = (200, 600);
/// Margins around the plot: room for the title, tick labels, captions and the colour bar.
const LEFT: usize = 44;
const TOP: usize = 26;
const BOTTOM: usize = 30;
const BAR_GAP: usize = 12;
const BAR_WIDTH: usize = 12;
const RIGHT: usize = BAR_GAP + BAR_WIDTH + 50;

const WHITE: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [30, 30, 30];
/// Cells with no finite value.
const NO_DATA: [u8; 3] = [150, 150, 150];

/// Viridis at 9 evenly spaced points (matplotlib's map as published by R's `viridis(9)`),
/// interpolated linearly: close enough to the 256-entry table for a quick-look.
const VIRIDIS: [[u8; 3]; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2D, 0x7B],
    [0x3B, 0x52, 0x8B],
    [0x2C, 0x72, 0x8E],
    [0x21, 0x90, 0x8C],
    [0x27, 0xAD, 0x81],
    [0x5D, 0xC8, 0x63],
    [0xAA, 0xDC, 0x32],
    [0xFD, 0xE7, 0x25],
];

/// Viridis colour of `x` in [0, 1] (clamped).
fn viridis(x: f64) -> [u8; 3] {
    let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let position = x * (VIRIDIS.len() - 1) as f64;
    let lower = (position.floor() as usize).min(VIRIDIS.len() - 2);
    let fraction = position - lower as f64;
    let (a, b) = (VIRIDIS[lower], VIRIDIS[lower + 1]);
    std::array::from_fn(|i| {
        (f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * fraction).round() as u8
    })
}

/// An RGB image being drawn.
struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: WHITE.repeat(width * height),
        }
    }

    fn set(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        if x < self.width && y < self.height {
            let at = (y * self.width + x) * 3;
            self.rgb[at..at + 3].copy_from_slice(&colour);
        }
    }

    fn rect(&mut self, x: usize, y: usize, width: usize, height: usize, colour: [u8; 3]) {
        for yy in y..y + height {
            for xx in x..x + width {
                self.set(xx, yy, colour);
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y); characters the font lacks are `?`.
    fn text(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            for (dy, row) in rows.iter().enumerate() {
                for dx in 0..GLYPH_WIDTH {
                    if row & (1 << (GLYPH_WIDTH - 1 - dx)) != 0 {
                        self.set(x + i * ADVANCE + dx, y + dy, colour);
                    }
                }
            }
        }
    }
}

const GLYPH_WIDTH: usize = 5;
const GLYPH_HEIGHT: usize = 7;
const ADVANCE: usize = GLYPH_WIDTH + 1;

fn text_width(text: &str) -> usize {
    text.chars().count() * ADVANCE
}

/// 5×7 glyphs, one byte per row, the leftmost pixel in bit 4.
fn glyph(c: char) -> [u8; GLYPH_HEIGHT] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; GLYPH_HEIGHT],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // '?'
    }
}

/// Pixels for `cells` data cells along an axis within `(min, max)`: every cell once when it
/// fits, whole-number enlargement of small axes, the maximum for large ones.
fn axis_pixels(cells: usize, (min, max): (usize, usize)) -> usize {
    if cells >= max {
        max
    } else if cells >= min {
        cells
    } else {
        (cells * min.div_ceil(cells.max(1))).min(max)
    }
}

/// Cells `[first, end)` that pixel `pixel` of `pixels` shows (at least one cell).
fn cells_of_pixel(pixel: usize, pixels: usize, cells: usize) -> (usize, usize) {
    let first = pixel * cells / pixels;
    let end = ((pixel + 1) * cells / pixels).max(first + 1).min(cells);
    (first, end)
}

/// The `p`-quantile (0..=1) of a non-empty set, by selection.
fn quantile(values: &mut [f64], p: f64) -> f64 {
    let rank = ((values.len() - 1) as f64 * p).round() as usize;
    *values
        .select_nth_unstable_by(rank.min(values.len() - 1), f64::total_cmp)
        .1
}

/// A "nice" tick step (1, 2 or 5 × 10^k) giving at most `max_ticks` ticks over `range`.
fn nice_step(range: f64, max_ticks: usize) -> f64 {
    let raw = range / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Decimals needed to print multiples of `step`.
fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    }
}

/// Multiples of `step` in `[low, high]` (at most a few hundred, whatever the inputs).
fn ticks(low: f64, high: f64, step: f64) -> Vec<f64> {
    if !(step > 0.0 && low.is_finite() && high.is_finite() && low <= high) {
        return Vec::new();
    }
    let first = (low / step).ceil();
    (0..200)
        .map(|k| (first + f64::from(k)) * step)
        .take_while(|&v| v <= high + step * 1e-9)
        .collect()
}

/// Fractional index of `value` along an ascending `axis`: `i` at `axis[i]`, linear between
/// entries, extrapolated with `end_step` past the last one. `None` when outside or unsorted.
fn fractional_index(axis: &[f64], value: f64, end_step: f64) -> Option<f64> {
    let last = axis.len().checked_sub(1)?;
    let after = axis.partition_point(|&a| a <= value);
    if after == 0 {
        return (value == axis[0]).then_some(0.0);
    }
    let i = after - 1;
    let (a, b) = match axis.get(i + 1) {
        Some(&b) => (axis[i], b),
        None => (axis[last], axis[last] + end_step),
    };
    let index = i as f64 + (value - a) / (b - a);
    index.is_finite().then_some(index)
}

/// HH:MM:SS (with tenths when `tenths`) of UTC seconds since 1970.
fn clock(seconds: f64, tenths: bool) -> String {
    let tenth_units = (seconds * 10.0).round();
    if !tenth_units.is_finite() {
        return "?".to_string();
    }
    let of_day = tenth_units.rem_euclid(864_000.0) as u64;
    let (h, m, s, t) = (
        of_day / 36_000,
        of_day / 600 % 60,
        of_day / 10 % 60,
        of_day % 10,
    );
    if tenths {
        format!("{h:02}:{m:02}:{s:02}.{t}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A quick-look PNG of `clip` with `title` above it (see the module doc).
pub fn render_png(clip: &SpectrogramClip, title: &str) -> Result<Vec<u8>, RenderError> {
    let (nfreq, ncols) = (clip.nfreq, clip.time_s.len());
    if nfreq == 0 || ncols == 0 {
        return Err(RenderError::Empty { nfreq, ncols });
    }
    if nfreq.checked_mul(ncols) != Some(clip.psd.len()) || clip.frequency_hz.len() != nfreq {
        return Err(RenderError::Shape {
            psd: clip.psd.len(),
            nfreq,
            ncols,
            frequencies: clip.frequency_hz.len(),
        });
    }

    // Colour limits from the finite values.
    let mut finite: Vec<f64> = clip.psd.iter().copied().filter(|v| v.is_finite()).collect();
    let (low, high) = if finite.is_empty() {
        (0.0, 1.0)
    } else {
        let low = quantile(&mut finite, 0.02);
        let high = quantile(&mut finite, 0.98);
        (low, if high > low { high } else { low + 1.0 })
    };
    drop(finite);

    let plot_width = axis_pixels(ncols, PLOT_WIDTH);
    let plot_height = axis_pixels(nfreq, PLOT_HEIGHT);
    let width = LEFT + plot_width + RIGHT;
    let height = TOP + plot_height + BOTTOM;
    let mut canvas = Canvas::new(width, height);

    // Reduce columns first (each pixel column → the max per frequency over its columns),
    // then frequencies: every cell is read once.
    let mut column_max = vec![f64::NAN; nfreq];
    for px in 0..plot_width {
        let (first, end) = cells_of_pixel(px, plot_width, ncols);
        column_max.fill(f64::NAN);
        for column in clip.psd[first * nfreq..end * nfreq].chunks(nfreq) {
            for (best, &v) in column_max.iter_mut().zip(column.iter()) {
                if v.is_finite() && (best.is_nan() || v > *best) {
                    *best = v;
                }
            }
        }
        for py in 0..plot_height {
            // Row 0 of the picture is the highest frequency.
            let (first_bin, end_bin) = cells_of_pixel(plot_height - 1 - py, plot_height, nfreq);
            let value = column_max[first_bin..end_bin]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::max);
            let colour = if value.is_finite() {
                viridis((value - low) / (high - low))
            } else {
                NO_DATA
            };
            canvas.set(LEFT + px, TOP + py, colour);
        }
    }

    // Frame.
    let (plot_right, plot_bottom) = (LEFT + plot_width, TOP + plot_height);
    canvas.rect(LEFT - 1, TOP - 1, plot_width + 2, 1, INK);
    canvas.rect(LEFT - 1, plot_bottom, plot_width + 2, 1, INK);
    canvas.rect(LEFT - 1, TOP - 1, 1, plot_height + 2, INK);
    canvas.rect(plot_right, TOP - 1, 1, plot_height + 2, INK);

    // Frequency ticks in kHz, placed through the frequency axis itself.
    let khz: Vec<f64> = clip.frequency_hz.iter().map(|f| f / 1000.0).collect();
    let ascending = khz.iter().all(|f| f.is_finite()) && khz.windows(2).all(|w| w[0] < w[1]);
    if ascending && nfreq >= 2 {
        let (f_low, f_high) = (khz[0], khz[nfreq - 1]);
        let step = nice_step(f_high - f_low, (plot_height / 40).max(2));
        let bin_step = (f_high - f_low) / (nfreq - 1) as f64;
        for tick in ticks(f_low, f_high, step) {
            let Some(index) = fractional_index(&khz, tick, bin_step) else {
                continue;
            };
            let y = plot_bottom as f64 - (index + 0.5) * plot_height as f64 / nfreq as f64;
            if !(y >= TOP as f64 && y < plot_bottom as f64) {
                continue;
            }
            let y = y as usize;
            canvas.rect(LEFT - 4, y, 3, 1, INK);
            let label = format!("{tick:.*}", decimals(step));
            canvas.text(
                (LEFT - 6).saturating_sub(text_width(&label)),
                y.saturating_sub(GLYPH_HEIGHT / 2),
                &label,
                INK,
            );
        }
    }
    canvas.text(4, TOP - 10, "KHZ", INK);

    // Time ticks at round UTC clock times.
    let spacing = if clip.seconds_per_column.is_finite() && clip.seconds_per_column > 0.0 {
        clip.seconds_per_column
    } else {
        1.0
    };
    let (t_first, t_end) = (clip.time_s[0], clip.time_s[ncols - 1] + spacing);
    const STEPS: [f64; 17] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0,
    ];
    let max_ticks = (plot_width / 80).max(1) as f64;
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| (t_end - t_first) / s <= max_ticks)
        .unwrap_or(21_600.0);
    for tick in ticks(t_first, t_end, step) {
        let Some(index) = fractional_index(&clip.time_s, tick, spacing) else {
            continue;
        };
        let x = LEFT as f64 + index * plot_width as f64 / ncols as f64;
        if !(x >= LEFT as f64 && x <= plot_right as f64) {
            continue;
        }
        let x = x as usize;
        canvas.rect(x, plot_bottom + 1, 1, 3, INK);
        let label = clock(tick, step < 1.0);
        let left = x
            .saturating_sub(text_width(&label) / 2)
            .min(width.saturating_sub(text_width(&label)));
        canvas.text(left, plot_bottom + 6, &label, INK);
    }
    canvas.text(LEFT, plot_bottom + 18, "UTC", INK);

    // Colour bar: low dB at the bottom.
    let bar_left = plot_right + BAR_GAP;
    for py in 0..plot_height {
        let x = (plot_height - 1 - py) as f64 / (plot_height - 1).max(1) as f64;
        canvas.rect(bar_left, TOP + py, BAR_WIDTH, 1, viridis(x));
    }
    let db_step = nice_step(high - low, (plot_height / 40).max(2));
    for tick in ticks(low, high, db_step) {
        let y = plot_bottom as f64 - 1.0 - (tick - low) / (high - low) * (plot_height - 1) as f64;
        if !(y >= TOP as f64 - 0.5 && y < plot_bottom as f64) {
            continue;
        }
        let y = y.round() as usize;
        canvas.rect(bar_left + BAR_WIDTH, y, 3, 1, INK);
        let label = format!("{tick:.*}", decimals(db_step));
        canvas.text(
            bar_left + BAR_WIDTH + 5,
            y.saturating_sub(GLYPH_HEIGHT / 2),
            &label,
            INK,
        );
    }
    canvas.text(bar_left, TOP - 10, "DB", INK);

    // Title, cut to the picture's width.
    let fits = (width.saturating_sub(8)) / ADVANCE;
    let title: String = title.chars().take(fits).collect();
    canvas.text(4, 4, &title, INK);

    encode(&canvas)
}

fn encode(canvas: &Canvas) -> Result<Vec<u8>, RenderError> {
    let encode_error = |e: png::EncodingError| RenderError::Encode(e.to_string());
    let dimension =
        |v: usize| u32::try_from(v).map_err(|_| RenderError::Encode("too large".into()));
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(
            &mut out,
            dimension(canvas.width)?,
            dimension(canvas.height)?,
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode_error)?;
        writer.write_image_data(&canvas.rgb).map_err(encode_error)?;
        writer.finish().map_err(encode_error)?;
    }
    Ok(out)
}
