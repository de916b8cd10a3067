//! Human views of a run's [`SimResults`]: a fixed-width summary for the terminal ([`summary_table`]) and a
//! self-contained HTML page with inline SVG plots ([`html_report`]); [`write_report`] puts the page and the JSON in a
//! directory.
//!
//! Both views are pure functions of the results: the same results give byte-identical output.

mod common;
mod energy;
mod html;
mod map;
mod plots;
mod svg;
mod table;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use html::html_report;
pub use table::summary_table;

use crate::results::SimResults;

/// File name of the HTML report inside the report directory.
pub const REPORT_FILE: &str = "report.html";

/// File name of the results, as pretty JSON, inside the report directory.
pub const RESULTS_FILE: &str = "results.json";

/// Writing a report failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The report directory could not be created.
    #[error("cannot create report directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The results could not be serialised to JSON.
    #[error("cannot serialise results for {}: {source}", path.display())]
    Json {
        /// The file it was meant for.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// Writes [`REPORT_FILE`] (see [`html_report`]) and [`RESULTS_FILE`] (the results as pretty JSON; numbers that are not
/// finite become `null`) into `dir`, creating it and its parents if needed, and replacing earlier files of those
/// names. Returns the path of the HTML report.
pub fn write_report(dir: &Path, results: &SimResults) -> Result<PathBuf, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir { path: dir.to_owned(), source })?;
    let json_path = dir.join(RESULTS_FILE);
    let mut json = serde_json::to_string_pretty(results)
        .map_err(|source| ReportError::Json { path: json_path.clone(), source })?;
    json.push('\n');
    fs::write(&json_path, json).map_err(|source| ReportError::Write { path: json_path, source })?;
    let html_path = dir.join(REPORT_FILE);
    fs::write(&html_path, html_report(results))
        .map_err(|source| ReportError::Write { path: html_path.clone(), source })?;
    Ok(html_path)
}
