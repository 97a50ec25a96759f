//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod gen;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod status;

use std::path::Path;
use std::process::ExitCode;

/// Loads a pipeline file, printing the error and returning exit code 2 when it is bad.
/// Loads any pipeline file, printing a located error and giving exit code 2 when bad.
pub(crate) fn load_job(path: &Path) -> Result<penstock_config::Job, ExitCode> {
    penstock_config::load_job(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

pub(crate) fn load_pipeline(path: &Path) -> Result<penstock_config::Pipeline, ExitCode> {
    penstock_config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}
