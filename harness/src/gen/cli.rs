//! `harness keys`: print sampled key indexes, to eyeball or plot a distribution.

use super::dist::{DistributionSpec, KeySampler, KEYS_MAX};
use super::rng::HarnessRng;
use anyhow::{bail, Context};
use std::io::Write;

/// Most indexes one `harness keys` call prints: 1e9 lines is about 10 GB of text.
pub const KEYS_COUNT_MAX: u64 = 1_000_000_000;

/// Arguments of `harness keys`.
#[derive(Clone, Debug, clap::Args)]
pub struct KeysArgs {
    /// Distribution name (uniform, sequential, zipfian, scrambled_zipfian, latest, hotspot,
    /// exponential, left_skewed, right_skewed, clustered, time_series).
    #[arg(long, default_value = "zipfian")]
    pub distribution: String,
    /// Key count: indexes are sampled from 0..n.
    #[arg(long, default_value_t = 1_000_000)]
    pub n: u64,
    /// How many indexes to print.
    #[arg(long, default_value_t = 10)]
    pub count: u64,
    /// Seed of the sampling stream (thread 0).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distribution parameter as key=value (TOML value syntax), e.g. --set theta=0.9.
    #[arg(long = "set", value_name = "KEY=VALUE", num_args = 1..)]
    pub set: Vec<String>,
}

/// The spec `name` plus `key=value` overrides describe.
pub fn spec_from_args(name: &str, set: &[String]) -> anyhow::Result<DistributionSpec> {
    let mut table = toml::Table::new();
    table.insert("name".to_owned(), toml::Value::String(name.to_owned()));
    for item in set {
        let Some((key, raw)) = item.split_once('=') else {
            bail!("--set {item:?}: expected key=value");
        };
        let key = key.trim();
        let raw = raw.trim();
        // A TOML value if it parses as one (0.9, true, "x"), otherwise a bare string.
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        table.insert(key.to_owned(), value);
    }
    let spec: DistributionSpec = toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("distribution {name:?} with {set:?}"))?;
    Ok(spec)
}

/// Prints `args.count` indexes sampled from the distribution, one per line.
pub fn run_keys(args: &KeysArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.count > KEYS_COUNT_MAX {
        bail!("--count {} exceeds {KEYS_COUNT_MAX}", args.count);
    }
    if args.n == 0 || args.n > KEYS_MAX {
        bail!("--n {} must be in 1..={KEYS_MAX}", args.n);
    }
    let spec = spec_from_args(&args.distribution, &args.set)?;
    let mut sampler = KeySampler::new(&spec, args.n)?;
    let mut rng = HarnessRng::for_thread(args.seed, 0);
    let mut buffered = std::io::BufWriter::new(out);
    for _ in 0..args.count {
        let index = sampler.sample(&mut rng);
        writeln!(buffered, "{index}")?;
    }
    buffered.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(distribution: &str, set: &[&str]) -> KeysArgs {
        KeysArgs {
            distribution: distribution.to_owned(),
            n: 1000,
            count: 50,
            seed: 3,
            set: set.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn prints_count_indexes_below_n_deterministically() -> anyhow::Result<()> {
        let mut first = Vec::new();
        run_keys(&args("zipfian", &["theta=0.8", "method=ycsb"]), &mut first)?;
        let mut second = Vec::new();
        run_keys(&args("zipfian", &["theta=0.8", "method=ycsb"]), &mut second)?;
        assert_eq!(first, second);
        let text = String::from_utf8(first)?;
        let indexes: Vec<u64> = text.lines().map(str::parse).collect::<Result<_, _>>()?;
        assert_eq!(indexes.len(), 50);
        assert!(indexes.iter().all(|&i| i < 1000));
        Ok(())
    }

    #[test]
    fn parses_from_the_command_line() -> anyhow::Result<()> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            keys: KeysArgs,
        }
        let cli = Cli::try_parse_from([
            "keys",
            "--distribution",
            "hotspot",
            "--n",
            "100",
            "--count",
            "3",
            "--seed",
            "9",
            "--set",
            "data_fraction=0.1",
            "op_fraction=0.9",
            "--set",
            "x=1",
        ])?;
        assert_eq!(
            cli.keys.set,
            vec!["data_fraction=0.1", "op_fraction=0.9", "x=1"]
        );
        assert_eq!((cli.keys.n, cli.keys.count, cli.keys.seed), (100, 3, 9));
        let spec = spec_from_args("hotspot", &cli.keys.set[..2])?;
        assert_eq!(
            spec,
            DistributionSpec::Hotspot {
                data_fraction: 0.1,
                op_fraction: 0.9
            }
        );
        Ok(())
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut sink = Vec::new();
        assert!(run_keys(&args("zipf", &[]), &mut sink).is_err());
        assert!(run_keys(&args("zipfian", &["theta"]), &mut sink).is_err());
        assert!(run_keys(&args("zipfian", &["thetta=0.5"]), &mut sink).is_err());
        assert!(run_keys(&args("hotspot", &["data_fraction=2"]), &mut sink).is_err());
        assert!(run_keys(
            &KeysArgs {
                n: 0,
                ..args("uniform", &[])
            },
            &mut sink
        )
        .is_err());
    }
}
