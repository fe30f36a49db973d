//! `faultfs mount BACKING MOUNTPOINT --seed S [--control SOCKET]`: mounts the fault file
//! system and serves it until SIGINT/SIGTERM or an unmount (`fusermount3 -u MOUNTPOINT`).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: faultfs mount BACKING MOUNTPOINT --seed S [--control SOCKET]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let (mut seed, mut control) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => seed = it.next().and_then(|s| s.parse::<u64>().ok()),
            "--control" => control = it.next().map(PathBuf::from),
            _ => positional.push(a.clone()),
        }
    }
    let (Some(seed), [cmd, backing, mountpoint]) = (seed, positional.as_slice()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if cmd != "mount" {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    if let Some(why) = faultfs::unavailable() {
        eprintln!("faultfs: cannot mount: {why}");
        return ExitCode::from(2);
    }
    let mount = match faultfs::mount(&PathBuf::from(backing), &PathBuf::from(mountpoint), seed) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("faultfs: mount {mountpoint}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("faultfs: mounted {backing} at {mountpoint}, seed {seed}");
    if let Some(path) = control {
        let c = mount.control().clone();
        std::thread::spawn(move || {
            if let Err(e) = faultfs::control::serve(&c, &path) {
                eprintln!("faultfs: control socket {}: {e}", path.display());
            }
        });
    }
    // Serves until the mount goes away (an unmount ends the session thread).
    match mount.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultfs: session ended: {e}");
            ExitCode::from(1)
        }
    }
}
