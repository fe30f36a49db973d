//! The harness library: workloads, engine adapters, the driver, faults, checkers and reports.
//! The `harness` binary (`src/main.rs`) is a thin command line over it.
pub mod adapter;
pub mod report;
pub mod gen;
pub mod workload;
pub mod faults;
pub mod driver;
pub mod oracle;
pub mod scenario;
pub mod run;
pub mod chaos;
