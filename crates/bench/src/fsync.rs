//! The cost of one disk flush: overwrites a 4 KiB block of a preallocated file and calls
//! `fdatasync` on it, as a SQLite commit does to its write-ahead log with
//! `synchronous=FULL`.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::pipeline::percentile_ms;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Flushes to time.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Folder on the disk to measure; a new temporary folder when absent.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Flushes {
    pub benchmark: &'static str,
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

const BLOCK: usize = 4096;
/// Blocks in the file; writes cycle through them, as WAL frames do between checkpoints.
const BLOCKS: usize = 256;

pub fn run(args: &Args) -> anyhow::Result<Flushes> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    let dir = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let path = dir.path().join("flush.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    file.write_all(&vec![0u8; BLOCK * BLOCKS])?;
    file.sync_all()?;
    let mut block = vec![0u8; BLOCK];
    let mut times = Vec::with_capacity(args.count);
    for n in 0..args.count {
        block[..8].copy_from_slice(&(n as u64).to_le_bytes());
        file.seek(SeekFrom::Start(((n % BLOCKS) * BLOCK) as u64))?;
        file.write_all(&block)?;
        let started = Instant::now();
        file.sync_data()?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(Flushes {
        benchmark: "fdatasync",
        count: args.count,
        p50_ms: percentile_ms(&times, 50.0),
        p90_ms: percentile_ms(&times, 90.0),
        max_ms: percentile_ms(&times, 100.0),
    })
}
