//! `docker/Dockerfile` builds what the test suite builds: the `vigil` binary of this workspace,
//! with the toolchain `rust-toolchain.toml` pins, the committed lock file and the default
//! features, and ships it in a non-root runtime image with a health check.

use crate::read;

/// The Dockerfile's instructions, with `\` continuations joined and comments dropped.
fn instructions() -> Vec<String> {
    let text = read("docker/Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head.trim_end());
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The `cargo …` commands of every `RUN`, split on `&&`.
fn cargo_commands() -> Vec<Vec<String>> {
    instructions()
        .iter()
        .filter_map(|i| i.strip_prefix("RUN "))
        .flat_map(|run| {
            run.split("&&")
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|cmd| cmd.starts_with("cargo "))
        .map(|cmd| cmd.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn toolchain_channel() -> String {
    let toml: toml::Value = toml::from_str(&read("rust-toolchain.toml")).unwrap();
    toml["toolchain"]["channel"].as_str().unwrap().to_owned()
}

fn arg_default(name: &str) -> String {
    let prefix = format!("ARG {name}=");
    instructions()
        .iter()
        .find_map(|i| i.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no ARG {name}"))
}

#[test]
fn builds_with_the_pinned_toolchain() {
    assert_eq!(arg_default("RUST_VERSION"), toolchain_channel());
    let builder = instructions()
        .into_iter()
        .find(|i| i.starts_with("FROM rust:"))
        .unwrap();
    assert!(
        builder.starts_with("FROM rust:${RUST_VERSION}-"),
        "{builder}"
    );
}

#[test]
fn builds_the_vigil_binary_like_the_test_suite() {
    let commands = cargo_commands();
    let build: Vec<&Vec<String>> = commands.iter().filter(|c| c[1] == "build").collect();
    assert_eq!(build.len(), 1, "{commands:?}");
    assert_eq!(
        build[0].join(" "),
        "cargo build --release --locked --bin vigil"
    );
    // The dependency layer is cooked with the same profile, lock file and target.
    let cook = commands
        .iter()
        .find(|c| c[1] == "chef" && c[2] == "cook")
        .unwrap();
    for flag in ["--release", "--locked", "--bin"] {
        assert!(
            cook.contains(&flag.to_owned()),
            "cook without {flag}: {cook:?}"
        );
    }
    assert_eq!(
        cook[cook.iter().position(|a| a == "--bin").unwrap() + 1],
        "vigil"
    );
    // Same feature set as the suite's builds (default features of the `vigil` package).
    for command in &commands {
        for arg in command {
            assert!(
                !arg.starts_with("--features") && arg != "--no-default-features",
                "{command:?}"
            );
        }
    }

    // `vigil` is the binary of the root package, which the suite compiles with --workspace.
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("vigil"));
    let bins = manifest["bin"].as_array().unwrap();
    assert!(bins.iter().any(|b| b["name"].as_str() == Some("vigil")));
    let suite = read("scripts/test");
    assert!(suite.contains("cargo clippy --workspace --all-targets --all-features"));
    assert!(suite.contains("runner --workspace"));
}

#[test]
fn runtime_image_is_small_non_root_and_health_checked() {
    let instructions = instructions();
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .unwrap();
    let runtime = &instructions[last_from..];
    assert!(runtime[0].contains("-slim"), "{}", runtime[0]);
    let user = runtime
        .iter()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("runtime sets USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "USER {user}"
    );
    assert!(runtime.iter().any(|i| i.starts_with("HEALTHCHECK ")));
    assert!(
        runtime
            .iter()
            .any(|i| i == "ENTRYPOINT [\"/usr/local/bin/vigil\"]")
    );
    assert!(
        runtime
            .iter()
            .any(|i| i.starts_with("COPY --from=builder /out/vigil /usr/local/bin/vigil"))
    );
    // No credentials in the image.
    for i in runtime {
        assert!(!i.to_ascii_uppercase().contains("PASSWORD"), "{i}");
    }
}

#[test]
fn build_context_keeps_every_workspace_member() {
    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let mut needed: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    needed.extend(
        [
            "Cargo.lock",
            "Cargo.toml",
            "src",
            "tests",
            "rust-toolchain.toml",
        ]
        .map(String::from),
    );
    for path in needed {
        for pattern in &ignored {
            let pattern = pattern.trim_start_matches('/');
            assert!(
                pattern != path && !path.starts_with(&format!("{pattern}/")),
                ".dockerignore excludes {path}"
            );
        }
    }
    assert!(ignored.contains(&"/target"));
}
