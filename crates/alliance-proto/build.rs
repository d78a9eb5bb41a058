//! Generates the contract from `proto/alliance/v1`. protoc comes from a crate, so a fresh machine
//! builds with no manual step.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: a build directory shared by several
    // checkouts reuses the compiled script.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "types.proto",
        "events.proto",
        "commands.proto",
        "queries.proto",
        "audit.proto",
        "simulation.proto",
    ]
    .map(|f| root.join("alliance/v1").join(f));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("alliance_descriptor.bin"))
        .compile_with_config(config, &files, std::slice::from_ref(&root))?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
