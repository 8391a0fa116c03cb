fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "rill/v1/raft.proto",
        "rill/v1/controller.proto",
        "rill/v1/admin.proto",
        "rill/v1/broker.proto",
        "rill/v1/group.proto",
        "rill/v1/transaction.proto",
        "rill/v1/auth.proto",
    ];
    let paths: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // The vendored protoc, so a build needs no system protoc.
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .bytes(".")
        .file_descriptor_set_path(out.join("rill_descriptor.bin"))
        .compile_with_config(config, &paths, &[root])?;
    Ok(())
}
