//! Library side of the `penstock` binary: pieces shared by the CLI and the integration
//! tests.

pub mod infer;
