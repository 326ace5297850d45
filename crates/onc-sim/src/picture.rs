//! HSD `png` product of the simulator: a source [`ArchiveFile`] → a small spectrogram picture
//! (200×100 RGB PNG; x = time across the file, y = frequency with 0 Hz at the bottom, colour =
//! oracle PSD in dB) and its ONC-style file name.
//!
//! ONC's real pictures are larger and annotated; clients only store them, so a small, valid,
//! deterministic image whose pixels follow the same oracle as the MAT products is enough.

use crate::archive::ArchiveFile;
use crate::mat::product_stem;
use crate::oracle;

const WIDTH: u32 = 200;
const HEIGHT: u32 = 100;
/// Colour scale limits in dB (the oracle's range).
const DB_LO: f64 = 40.0;
const DB_HI: f64 = 120.0;

/// `<device>_<start>_<end>-spect.png` (like the MAT product name, without a resolution suffix).
pub fn hsd_png_filename(file: &ArchiveFile) -> String {
    format!("{}-spect.png", product_stem(file))
}

/// A simple dark-blue → cyan → yellow → red palette; NaN and -Inf (no data) are black.
fn colour(db: f64) -> [u8; 3] {
    if !db.is_finite() {
        return [0, 0, 0];
    }
    let x = ((db - DB_LO) / (DB_HI - DB_LO)).clamp(0.0, 1.0);
    let ramp = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [
        ramp(2.0 * x - 0.8),
        ramp(1.0 - (2.0 * x - 1.1).abs()),
        ramp(1.0 - 1.6 * x + 0.3),
    ]
}

/// The 200×100 RGB PNG of `file`'s spectrogram: pixel column x samples the oracle at
/// start + x·duration/200, pixel row y (top = Nyquist) at frequency (99 − y)/99 · rate/2.
pub fn hsd_png_bytes(file: &ArchiveFile) -> Result<Vec<u8>, String> {
    let duration = i128::from(file.duration_ms().max(0));
    let nyquist = f64::from(file.sample_rate) / 2.0;
    let mut pixels = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    for y in 0..HEIGHT {
        let freq = f64::from(HEIGHT - 1 - y) / f64::from(HEIGHT - 1) * nyquist;
        for x in 0..WIDTH {
            let offset = duration * i128::from(x) / i128::from(WIDTH);
            let t = i64::try_from(i128::from(file.start_ms) + offset).unwrap_or(file.start_ms);
            pixels.extend_from_slice(&colour(oracle::psd_db(&file.device, t, freq)));
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| format!("PNG header: {e}"))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| format!("PNG data: {e}"))?;
        writer.finish().map_err(|e| format!("PNG finish: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ArchiveFile {
        ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: 1_711_929_667_123,
            samples: 300_333 * 8,
            sample_rate: 8000,
        }
    }

    #[test]
    fn decodes_with_png_crate() {
        let f = file();
        let bytes = hsd_png_bytes(&f).unwrap();
        assert_eq!(bytes, hsd_png_bytes(&f).unwrap());
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (200, 100));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        // Bottom row is the DC row (-Inf): black. Other rows are mostly coloured.
        let row = |y: usize| &buf[y * 600..(y + 1) * 600];
        assert!(row(99).iter().all(|&c| c == 0));
        assert!(row(50).iter().filter(|&&c| c != 0).count() > 300);
        // Pixel (x=10, y=10) follows the oracle.
        let t = f.start_ms + f.duration_ms() * 10 / 200;
        let fr = 89.0 / 99.0 * 4000.0;
        assert_eq!(
            &buf[(10 * 200 + 10) * 3..(10 * 200 + 11) * 3],
            &colour(oracle::psd_db(&f.device, t, fr))
        );
    }

    #[test]
    fn filename_and_degenerate_input() {
        assert_eq!(
            hsd_png_filename(&file()),
            "ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-spect.png"
        );
        let weird = ArchiveFile {
            start_ms: i64::MAX,
            samples: u64::MAX,
            sample_rate: 0,
            ..file()
        };
        assert!(hsd_png_bytes(&weird).is_ok());
        let _ = hsd_png_filename(&weird);
    }
}
