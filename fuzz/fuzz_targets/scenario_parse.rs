//! The harness's scenario files: bytes as TOML through `harness::scenario::load` (parse,
//! schema, `--set` overrides, validation). Input: the TOML text, then optionally a NUL byte
//! and `key=value` override lines. A scenario that loads must survive a round trip through
//! TOML serialisation unchanged.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// Overrides per input: the parser's own cap is 64; a few reach every code path.
const OVERRIDES_MAX: usize = 8;

/// One scratch file per fuzzing process: `load` reads from a path.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("scenario-fuzz-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let overrides: Vec<String> = String::from_utf8_lossy(rest)
        .lines()
        .take(OVERRIDES_MAX)
        .map(str::to_string)
        .collect();
    let path = scratch();
    if std::fs::write(path, text).is_err() {
        return;
    }
    let Ok(scenario) = harness::scenario::load(path, &overrides) else {
        return;
    };
    let phases = scenario.run_phases().count();
    for i in 0..phases {
        assert!(!scenario.phase_name(i).is_empty(), "phase {i} has no name");
    }
    // Round trip: what loads, serialises, and loads again to the same thing.
    let Ok(once) = toml::to_string(&scenario) else {
        return;
    };
    if std::fs::write(path, &once).is_err() {
        return;
    }
    match harness::scenario::load(path, &[]) {
        Ok(again) => {
            let twice = toml::to_string(&again).unwrap_or_default();
            assert_eq!(once, twice, "scenario changes in a TOML round trip");
        }
        Err(e) => panic!("a loaded scenario does not load again after serialisation: {e}\n{once}"),
    }
});
