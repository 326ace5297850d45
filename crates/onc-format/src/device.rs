//! The shape of an ONC device code (`ICLISTENHF6324`, `SBECTD19p6813`).
//!
//! Input: any string. Output: whether ONC could know it as a device code. This is a shape check
//! only (3–64 ASCII letters, digits, `_` or `-`, starting with a letter): whether the device
//! exists is ONC's to say.

/// What a device code looks like, for help texts.
pub const DEVICE_CODE_SHAPE: &str = "device codes are 3-64 ASCII letters, digits, `_` or `-`, starting with a letter, e.g. ICLISTENHF6324";

/// Whether a string looks like an ONC device code.
pub fn looks_like_device_code(code: &str) -> bool {
    (3..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_alphabetic())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_codes() {
        for good in [
            "ICLISTENHF6324",
            "SBECTD19p6813",
            "NORTEK_AQD-1",
            "abc",
            "A-B_C",
        ] {
            assert!(looks_like_device_code(good), "{good}");
        }
        for bad in [
            "",
            "IC",
            "6324ICLISTEN",
            "_ABC",
            "ICLISTEN HF",
            "ICLISTEN/../x",
            "ÉCLISTEN",
            &"A".repeat(65),
        ] {
            assert!(!looks_like_device_code(bad), "{bad}");
        }
    }
}
