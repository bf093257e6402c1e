//! Builds `csrc/trees.c`, which writes parse trees in protobuf's wire format straight from
//! PostgreSQL's parse nodes (see the file's header), against the libpg_query sources of the
//! `pg_query` crate this crate links: its headers for the node structs, its field lists for the
//! nodes' fields, its `pg_query.proto` for the field numbers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `pg_query` release whose libpg_query internals `csrc/trees.c` is written against (the
/// workspace pins it). Another release may describe its nodes differently; the tests compare
/// both encodings on every statement they have, but a mismatch is better stopped here.
const PG_QUERY_VERSION: &str = "18.1.0";

fn main() {
    println!("cargo:rerun-if-changed=csrc/trees.c");
    // Another pg_query release changes the lock file: check it against PG_QUERY_VERSION again.
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    let libpg_query = libpg_query_sources();
    let proto = libpg_query.join("protobuf/pg_query.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let proto_text = std::fs::read_to_string(&proto)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", proto.display()));
    std::fs::write(out_dir.join("pgq_fields.h"), field_numbers(&proto_text))
        .expect("OUT_DIR is writable");

    let mut build = cc::Build::new();
    build
        .file("csrc/trees.c")
        .include(&out_dir)
        .include(&libpg_query)
        .include(libpg_query.join("vendor"))
        .include(libpg_query.join("src"))
        .include(libpg_query.join("src/include"))
        .include(libpg_query.join("src/postgres/include"))
        // libpg_query's vendored PostgreSQL sources warn a lot; this file's own warnings were
        // read when it was written.
        .warnings(false);
    // The flags and definitions `pg_query` compiles libpg_query with, so the node structs and
    // the assertions are the same on both sides.
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let debug = std::env::var("DEBUG").unwrap_or_default();
    if profile == "debug" || debug == "1" {
        build.define("USE_ASSERT_CHECKING", None);
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("msvc") {
        build.flag("-fno-strict-aliasing").flag("-fwrapv");
    }
    if target.contains("windows") {
        build.include(libpg_query.join("src/postgres/include/port/win32"));
        if target.contains("msvc") {
            build.include(libpg_query.join("src/postgres/include/port/win32_msvc"));
        }
    }
    build.compile("safeshift_trees");
}

/// The `libpg_query` directory of the `pg_query` package in this build, as `cargo metadata`
/// reports it (a registry, a vendored directory or a git checkout alike). Offline first: the
/// sources are already on disk, since `pg_query` is a dependency of this crate.
fn libpg_query_sources() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let manifest = Path::new(&manifest_dir).join("Cargo.toml");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let mut failures = Vec::new();
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &target,
            ])
            .arg("--manifest-path")
            .arg(&manifest);
        if offline {
            command.arg("--offline");
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) => panic!("cannot run `cargo metadata` to find pg_query's sources: {e}"),
        };
        if !output.status.success() {
            failures.push(String::from_utf8_lossy(&output.stderr).into_owned());
            continue;
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
        let packages = metadata["packages"]
            .as_array()
            .expect("metadata lists packages");
        let pg_query = packages
            .iter()
            .find(|p| p["name"] == "pg_query")
            .expect("pg_query is a dependency of safeshift-lint");
        let version = pg_query["version"].as_str().unwrap_or_default();
        assert_eq!(
            version, PG_QUERY_VERSION,
            "csrc/trees.c is written against pg_query {PG_QUERY_VERSION}'s libpg_query; this \
             build has pg_query {version}: check the WRITE_* macros and the node list against \
             its pg_query_outfuncs_protobuf.c, then change PG_QUERY_VERSION and the workspace pin"
        );
        let manifest_path = pg_query["manifest_path"].as_str().expect("a manifest path");
        let dir = Path::new(manifest_path)
            .parent()
            .expect("a manifest is in a directory")
            .join("libpg_query");
        assert!(
            dir.join("src/include/pg_query_outfuncs_defs.c").is_file(),
            "{} does not hold libpg_query's sources",
            dir.display()
        );
        return dir;
    }
    panic!(
        "`cargo metadata` could not say where pg_query's sources are:\n{}",
        failures.join("\n")
    );
}

/// `#define PGQ_F_<Message>_<field> <number>` for every field of every message in
/// `pg_query.proto`, oneof members included (the `Node` message is one oneof).
fn field_numbers(proto: &str) -> String {
    enum Block {
        Message(String),
        Oneof,
        Enum,
    }
    let mut header = String::from("/* Generated by build.rs from pg_query.proto. */\n");
    let mut blocks: Vec<Block> = Vec::new();
    for line in proto.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["message", name, ..] => {
                blocks.push(Block::Message(name.trim_end_matches('{').to_owned()))
            }
            ["oneof", ..] => blocks.push(Block::Oneof),
            ["enum", ..] => blocks.push(Block::Enum),
            ["}", ..] => {
                blocks.pop();
            }
            _ => {
                if matches!(blocks.last(), None | Some(Block::Enum)) {
                    continue;
                }
                let message = blocks.iter().rev().find_map(|block| match block {
                    Block::Message(name) => Some(name),
                    _ => None,
                });
                if let (Some(message), Some((name, number))) = (message, field(line)) {
                    writeln!(header, "#define PGQ_F_{message}_{name} {number}").unwrap();
                }
            }
        }
    }
    header
}

/// `repeated Node items = 1 [json_name="items"];` → `("items", 1)`.
fn field(line: &str) -> Option<(&str, u32)> {
    let (declaration, number) = line.split_once('=')?;
    let number: u32 = number
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let name = declaration.split_whitespace().last()?;
    Some((name, number))
}
