//! Writes the seed corpus of the fuzz targets: `fuzz/corpus/command/` (the reference plan's
//! commands as requests, and requests it accepts at its latest version) and
//! `fuzz/corpus/envelope/` (the reference plan's events as log records).
//!
//! `cargo run -p alliance-fuzz --example seed [CORPUS_DIR]` (default: the repository's
//! `fuzz/corpus`). Existing files are kept; a seed overwrites the file of its own name.

use std::path::PathBuf;

use alliance_fuzz::seed::{Seed, command_seeds, envelope_seeds};

fn write(dir: PathBuf, seeds: &[Seed]) -> std::io::Result<()> {
    std::fs::create_dir_all(&dir)?;
    for seed in seeds {
        std::fs::write(dir.join(format!("seed-{}", seed.name)), &seed.data)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = std::env::args_os().nth(1).map_or_else(
        || alliance_fuzz::repository_file("fuzz/corpus"),
        PathBuf::from,
    );
    write(root.join("command"), &command_seeds())?;
    write(root.join("envelope"), &envelope_seeds())?;
    Ok(())
}
