//! MAT reader fuzz target: any bytes → `read_mat` must return, never panic or blow up memory.
//! What reads is also interpreted as an ONC spectrogram (and cropped/re-clipped), and written:
//! a written file must read back equal to what was read (the round trip the clip stage relies on).

#![no_main]

use libfuzzer_sys::fuzz_target;
use onc_pipe::clip::mat::{
    crop_spectrogram_mat, read_mat, spectrogram_clip_mat, spectrogram_from_mat, write_mat,
};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = read_mat(data) else {
        return;
    };
    if let Ok(sg) = spectrogram_from_mat(&file) {
        let _ = crop_spectrogram_mat(&file, 0..sg.ntime.min(2));
        let _ = spectrogram_clip_mat(&file, &sg.psd, sg.nfreq, &sg.time_s);
    }
    if let Ok(bytes) = write_mat(&file) {
        match read_mat(&bytes) {
            Ok(again) => assert!(again == file, "round trip changed the file"),
            Err(e) => panic!("a written file does not read back: {e}"),
        }
    }
});
