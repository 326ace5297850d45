//! The five-minute grid of ONC's hydrophone files.
//!
//! ONC archives hydrophone data as files of nominally five minutes, starting near (never exactly
//! on) the five-minute marks of UTC. Input: milliseconds since 1970. Output: grid slots and
//! reach. No errors: every function is total over `i64`.

/// Milliseconds in the nominal length of one ONC hydrophone source file.
pub const FILE_MS: i64 = 300_000;

/// How far a source file can reach from its nominal start: a nominal length plus slack, since
/// real files start off the grid and run a few seconds long. A file that starts more than this
/// before a window cannot overlap it.
pub const FILE_REACH_MS: i64 = FILE_MS + 10_000;

/// The grid slot holding an instant: slot `k` spans `[k·FILE_MS, (k+1)·FILE_MS)`.
pub fn slot_of(ms: i64) -> i64 {
    ms.div_euclid(FILE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_floor_towards_negative_infinity() {
        assert_eq!(slot_of(0), 0);
        assert_eq!(slot_of(FILE_MS - 1), 0);
        assert_eq!(slot_of(FILE_MS), 1);
        assert_eq!(slot_of(-1), -1);
        assert_eq!(slot_of(i64::MIN), i64::MIN.div_euclid(FILE_MS));
    }
}
