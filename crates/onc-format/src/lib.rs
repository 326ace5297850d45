//! ONC's conventions, in one leaf that the product and the simulator both use.
//!
//! Input: strings and instants as ONC writes and reads them. Output: typed values (milliseconds
//! since 1970, UTC instants), validity checks and the exact spellings ONC expects. Nothing here
//! does I/O, and every parser takes any string without panicking (property-tested over arbitrary
//! Unicode): a parser answers `None` or `false`, never an error type, because what to say about
//! a bad value depends on where it came from (a manifest row, an ONC listing, a URL).
//!
//! - [`stamp`]: file-name time stamps (`20240401T000107.123Z`) parsed and written, ONC's query
//!   date format (`2024-04-01T00:01:07.123Z`), archive file names.
//! - [`grid`]: the five-minute file grid.
//! - [`deployment`]: a device at a location over a time span, and which parts of a span
//!   deployments leave uncovered.
//! - [`device`]: the shape of a device code.
//! - [`query`]: query-parameter names and values of ONC's web services.
//! - [`options`]: data products, their extensions and `dpo_*` options.

pub mod deployment;
pub mod device;
pub mod grid;
pub mod options;
pub mod query;
pub mod stamp;
