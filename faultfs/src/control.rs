//! The control socket of the `faultfs` binary: a unix stream socket, one command per line,
//! one answer line per command (`ok ...` or `error ...`).
//!
//! | command | effect |
//! |---|---|
//! | `power-loss [drop\|sqlite\|fdb\|half]` | cut the power (default `drop`: every unsynced write lost) |
//! | `fsync-eio N` | the Nth fsync from now fails with EIO and drops its dirty pages |
//! | `write-eio N`, `read-eio N` | the Nth write/read from now fails with EIO |
//! | `enospc BYTES` | writes may carry BYTES more, then fail with ENOSPC |
//! | `flip-bits N` | flip N seeded bits in durable data |
//! | `disarm` | disarm every fault |
//! | `stats` | the counters |

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crate::{Control, TornModel};

/// Longest command line read: commands are a few words.
const LINE_BYTES_MAX: u64 = 4096;

/// Runs one command against `control`; the answer line without its newline.
#[must_use]
pub fn execute(control: &Control, line: &str) -> String {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    let num = || arg.and_then(|a| a.parse::<u64>().ok());
    let result: Result<String, String> = match (cmd, num()) {
        ("power-loss", _) => match TornModel::by_name(arg.unwrap_or("drop")) {
            Some(t) => control
                .power_loss(t)
                .map(|()| "power lost".to_string())
                .map_err(|e| e.to_string()),
            None => Err("torn model: drop, sqlite, fdb or half".to_string()),
        },
        ("fsync-eio", Some(n)) => {
            control.arm_fsync_eio(n);
            Ok(format!("fsync {n} from now fails"))
        }
        ("write-eio", Some(n)) => {
            control.arm_write_eio(n);
            Ok(format!("write {n} from now fails"))
        }
        ("read-eio", Some(n)) => {
            control.arm_read_eio(n);
            Ok(format!("read {n} from now fails"))
        }
        ("enospc", Some(n)) => {
            control.arm_enospc(n);
            Ok(format!("{n} bytes of writes left"))
        }
        ("flip-bits", Some(n)) => control
            .flip_bits(u32::try_from(n).unwrap_or(u32::MAX))
            .map(|f| format!("{} bits flipped: {f:?}", f.len()))
            .map_err(|e| e.to_string()),
        ("disarm", _) => {
            control.disarm();
            Ok("disarmed".to_string())
        }
        ("stats", _) => Ok(format!("{:?}", control.stats())),
        _ => Err(format!("unknown command `{line}`")),
    };
    match result {
        Ok(s) => format!("ok {s}"),
        Err(e) => format!("error {e}"),
    }
}

/// Serves the control socket at `path` until the listener fails (one client at a time).
///
/// # Errors
/// The socket cannot be bound.
pub fn serve(control: &Control, path: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = session(control, stream);
    }
    Ok(())
}

fn session(control: &Control, stream: UnixStream) -> io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(io::Read::take(stream, LINE_BYTES_MAX * 1024));
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        let answer = execute(control, line.trim());
        out.write_all(format!("{answer}\n").as_bytes())?;
        line.clear();
    }
    Ok(())
}
