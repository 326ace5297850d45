//! The names ONC's web services use in query strings, and the fixed values onc-pipe sends.
//!
//! Input: nothing (constants). Output: the exact, case-sensitive spellings of `shared/onc-api.md`
//! §2–§4, so a typo is a compile error instead of a 400 from ONC. What each service *means* lives
//! in the product's `onc/` client; this module only spells.

/// The API token (never logged: see the product's `onc::redact`).
pub const TOKEN: &str = "token";
/// `method=request|run|download|status|cancel|restart` on `dataProductDelivery`.
pub const METHOD: &str = "method";
/// A device by its code (`ICLISTENHF6324`).
pub const DEVICE_CODE: &str = "deviceCode";
/// A site by its code (`BACAX`).
pub const LOCATION_CODE: &str = "locationCode";
/// A kind of device at a site (`HYDROPHONE`).
pub const DEVICE_CATEGORY_CODE: &str = "deviceCategoryCode";
/// Inclusive start of a time window, in [`crate::stamp::onc_date`]'s format.
pub const DATE_FROM: &str = "dateFrom";
/// Exclusive end of a time window.
pub const DATE_TO: &str = "dateTo";
/// A data product (`HSD` spectrograms, `AD` audio).
pub const DATA_PRODUCT_CODE: &str = "dataProductCode";
/// A data product's file type (`mat`, `png`, `flac`).
pub const EXTENSION: &str = "extension";
/// An archive listing's file type filter.
pub const FILE_EXTENSION: &str = "fileExtension";
/// What an archive listing returns per file.
pub const RETURN_OPTIONS: &str = "returnOptions";
/// [`RETURN_OPTIONS`] value: every field (file name, size, dates).
pub const RETURN_ALL: &str = "all";
/// A data product request's id.
pub const DP_REQUEST_ID: &str = "dpRequestId";
/// A data product run's id.
pub const DP_RUN_ID: &str = "dpRunId";
/// Which file of a run to download (1-based, or `meta`).
pub const INDEX: &str = "index";
/// An archived file's name.
pub const FILENAME: &str = "filename";
/// Prefix of every data product option (`dpo_spectralDataDownsample`).
pub const OPTION_PREFIX: &str = "dpo_";

/// The parameters that place a query in time; every other parameter says *what* is asked for.
pub const TIME_PARAMETERS: [&str; 2] = [DATE_FROM, DATE_TO];
