//! Building tests/fixture_app, or a copy of it, the way its users would:
//! `cargo build --profile PROFILE`, with no flags from the environment.
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the package of `manifest` in `profile` into `target_dir`;
/// returns the binary named `binary`.
pub fn build(manifest: &Path, profile: &str, target_dir: &Path, binary: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--profile", profile, "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building {} in {profile} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(profile).join(binary)
}
