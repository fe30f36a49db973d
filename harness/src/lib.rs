//! The harness library: workloads, engine adapters, the driver, faults, checkers and reports.
//! The `harness` binary (`src/main.rs`) is a thin command line over it.
pub mod adapter;
pub mod bench;
pub mod chaos;
pub mod compare;
pub mod driver;
pub mod faults;
pub mod gen;
pub mod oracle;
pub mod report;
pub mod resources;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod shrink;
pub mod soak;
pub mod sweep;
pub mod workload;
