//! `docker/compose.yaml`: the services, their images, health checks, restart policies, volumes
//! and start order; the environment it gives Vigil exists in Vigil's configuration; the ClickHouse
//! users and the Grafana provisioning match what the services expect.

use std::collections::BTreeSet;
use std::process::Command;

use serde_norway::{Mapping, Value};

use crate::{read, repo_path};

const VIGIL_SERVICES: [&str; 4] = ["migrate", "ingest", "process", "serve"];
const LONG_RUNNING: [&str; 6] = [
    "kafka",
    "clickhouse",
    "ingest",
    "process",
    "serve",
    "grafana",
];

/// The compose file, with `<<` merge keys applied as compose applies them.
fn compose() -> Value {
    let mut value: Value = serde_norway::from_str(&read("docker/compose.yaml")).unwrap();
    value.apply_merge().unwrap();
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Mapping {
    compose["services"][name]
        .as_mapping()
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn keys(mapping: &Mapping) -> BTreeSet<String> {
    mapping
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn str_of<'a>(service: &'a Mapping, key: &str) -> &'a str {
    service
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string {key}"))
}

/// `environment` as (name, value) pairs, whether written as a map or a list of `NAME=value`.
fn environment(service: &Mapping) -> Vec<(String, String)> {
    match service.get("environment") {
        None => Vec::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => panic!("unexpected environment value {other:?}"),
                };
                (k.as_str().unwrap().to_owned(), value)
            })
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                let (k, v) = item.as_str().unwrap().split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Some(other) => panic!("unexpected environment {other:?}"),
    }
}

fn env_value(service: &Mapping, name: &str) -> Option<String> {
    environment(service)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every `env = "…"` of the clap arguments in the binary's sources (`src/cli.rs` and the
/// subcommand modules): the variables Vigil reads.
fn vigil_env_vars() -> BTreeSet<String> {
    let mut files = vec![repo_path("src")];
    let mut vars = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let mut rest = source.as_str();
        while let Some(at) = rest.find("env = \"") {
            rest = &rest[at + "env = \"".len()..];
            let end = rest.find('"').unwrap();
            vars.insert(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    // Variables named by settings: the secret store's key (`[secrets] key-env`).
    vars.insert(vigil_notify::VaultConfig::default().key_env);
    vars
}

#[test]
fn has_the_expected_services_and_volumes() {
    let compose = compose();
    let services = keys(compose["services"].as_mapping().unwrap());
    let expected: BTreeSet<String> = [
        "kafka",
        "clickhouse",
        "migrate",
        "ingest",
        "process",
        "serve",
        "grafana",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(services, expected);

    let declared = keys(compose["volumes"].as_mapping().unwrap());
    let mut used = BTreeSet::new();
    for name in &services {
        let Some(volumes) = service(&compose, name).get("volumes") else {
            continue;
        };
        for volume in volumes.as_sequence().unwrap() {
            let spec = volume.as_str().unwrap();
            let source = spec.split(':').next().unwrap();
            if let Some(relative) = source.strip_prefix("./") {
                let path = repo_path(&format!("docker/{relative}"));
                assert!(path.exists(), "{name}: bind mount {source} does not exist");
            } else {
                used.insert(source.to_owned());
            }
        }
    }
    assert_eq!(used, declared, "named volumes declared vs used");
    for stateful in ["kafka", "clickhouse", "grafana"] {
        assert!(
            used.iter().any(|v| v.starts_with(stateful)),
            "{stateful} keeps its data in a named volume"
        );
    }
}

#[test]
fn images_are_the_official_ones_and_pinned() {
    let compose = compose();
    for (name, repository) in [
        ("kafka", "apache/kafka:"),
        ("clickhouse", "clickhouse/clickhouse-server:"),
        ("grafana", "grafana/grafana:"),
    ] {
        let image = str_of(service(&compose, name), "image");
        let tag = image
            .strip_prefix(repository)
            .unwrap_or_else(|| panic!("{name}: {image} is not {repository}…"));
        assert!(
            tag.split('.').count() >= 2 && tag.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{name}: tag {tag} is not a pinned version"
        );
    }
    let grafana = service(&compose, "grafana");
    let plugins = env_value(grafana, "GF_INSTALL_PLUGINS").unwrap();
    let version = plugins
        .strip_prefix("grafana-clickhouse-datasource ")
        .unwrap_or_else(|| panic!("GF_INSTALL_PLUGINS = {plugins}"));
    assert!(
        version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{version}"
    );
    assert_eq!(
        env_value(grafana, "GF_PLUGINS_PREINSTALL_SYNC"),
        Some(format!("grafana-clickhouse-datasource@{version}"))
    );
}

#[test]
fn vigil_services_share_one_image_built_by_the_dockerfile() {
    let compose = compose();
    let first = service(&compose, "migrate");
    for name in VIGIL_SERVICES {
        let svc = service(&compose, name);
        assert_eq!(svc.get("image"), first.get("image"), "{name}");
        let build = svc.get("build").unwrap();
        assert_eq!(build["context"].as_str(), Some(".."), "{name}");
        assert_eq!(
            build["dockerfile"].as_str(),
            Some("docker/Dockerfile"),
            "{name}"
        );
        let command: Vec<&str> = svc
            .get("command")
            .unwrap()
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(command, [name], "{name} runs `vigil {name}`");
    }
    assert!(repo_path("docker/Dockerfile").exists());
}

#[test]
fn vigil_subcommands_of_the_compose_file_exist() {
    let compose = compose();
    for name in VIGIL_SERVICES {
        let command = service(&compose, name).get("command").unwrap()[0]
            .as_str()
            .unwrap()
            .to_owned();
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([command.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`vigil {command}` is not a subcommand of this build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn health_checks_restart_policies_and_start_order() {
    let compose = compose();
    for name in LONG_RUNNING {
        let svc = service(&compose, name);
        assert_eq!(str_of(svc, "restart"), "unless-stopped", "{name}");
        let health = svc
            .get("healthcheck")
            .unwrap_or_else(|| panic!("{name}: no healthcheck"));
        let test = health["test"].as_sequence().unwrap();
        assert!(
            matches!(test[0].as_str(), Some("CMD" | "CMD-SHELL")),
            "{name}: {test:?}"
        );
        for key in ["interval", "timeout", "retries", "start_period"] {
            assert!(
                health.get(key).is_some(),
                "{name}: healthcheck without {key}"
            );
        }
    }
    let migrate = service(&compose, "migrate");
    assert_eq!(str_of(migrate, "restart"), "no", "migrate runs once");

    // Each Vigil service is checked on the port it is told to listen on, on all interfaces.
    for (name, listen_var) in [
        ("ingest", "VIGIL_INGEST_LISTEN"),
        ("process", "VIGIL_PROCESSOR_LISTEN"),
        ("serve", "VIGIL_QUERY_LISTEN"),
    ] {
        let svc = service(&compose, name);
        let listen = env_value(svc, listen_var).unwrap_or_else(|| panic!("{name}: {listen_var}"));
        let port = listen
            .strip_prefix("0.0.0.0:")
            .unwrap_or_else(|| panic!("{name}: {listen}"));
        let test: Vec<&str> = svc["healthcheck"]["test"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            test.last().copied(),
            Some(format!("http://127.0.0.1:{port}/healthz").as_str()),
            "{name}"
        );
    }

    let condition = |svc: &str, on: &str| -> String {
        service(&compose, svc)["depends_on"][on]["condition"]
            .as_str()
            .unwrap_or_else(|| panic!("{svc} does not wait for {on}"))
            .to_owned()
    };
    for svc in ["migrate", "ingest", "process", "serve"] {
        assert_eq!(condition(svc, "kafka"), "service_healthy", "{svc}");
        assert_eq!(condition(svc, "clickhouse"), "service_healthy", "{svc}");
    }
    for svc in ["ingest", "process", "serve", "grafana"] {
        assert_eq!(
            condition(svc, "migrate"),
            "service_completed_successfully",
            "{svc}"
        );
    }
    assert_eq!(condition("grafana", "clickhouse"), "service_healthy");
    assert!(migrate["depends_on"].get("migrate").is_none());
}

#[test]
fn every_vigil_variable_it_sets_exists_in_vigils_config() {
    let known = vigil_env_vars();
    assert!(
        known.contains("VIGIL_KAFKA_BROKERS"),
        "parsed src/cli.rs: {known:?}"
    );
    let compose = compose();
    let mut set = BTreeSet::new();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        for (var, _) in environment(svc.as_mapping().unwrap()) {
            if var.starts_with("VIGIL_") {
                assert!(
                    known.contains(&var),
                    "{}: {var} is not one of Vigil's variables {known:?}",
                    name.as_str().unwrap()
                );
                set.insert(var);
            }
        }
    }
    for needed in [
        "VIGIL_KAFKA_BROKERS",
        "VIGIL_CLICKHOUSE_URL",
        "VIGIL_CLICKHOUSE_USER",
        "VIGIL_CLICKHOUSE_PASSWORD",
        "VIGIL_CLICKHOUSE_DATABASE",
    ] {
        assert!(set.contains(needed), "{needed} is not set");
    }
}

#[test]
fn secrets_come_from_the_environment() {
    let compose = compose();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        for (var, value) in environment(svc.as_mapping().unwrap()) {
            if var.contains("PASSWORD") || var.contains("API_KEYS") {
                assert!(
                    value.starts_with("${") && value.contains(":?"),
                    "{}: {var} must be required from the environment, is {value:?}",
                    name.as_str().unwrap()
                );
            }
        }
    }
    let example = read("docker/.env.example");
    for var in [
        "CLICKHOUSE_VIGIL_PASSWORD",
        "CLICKHOUSE_GRAFANA_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "VIGIL_INGEST_API_KEYS",
        "VIGIL_QUERY_API_KEYS",
    ] {
        assert!(
            example.contains(&format!("{var}=")),
            "{var} not in .env.example"
        );
    }
    assert!(read("docker/.gitignore").lines().any(|l| l == ".env"));
}

#[test]
fn only_authenticated_services_are_published_beyond_loopback() {
    let compose = compose();
    for (name, svc) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let Some(ports) = svc.get("ports").and_then(Value::as_sequence) else {
            continue;
        };
        for port in ports {
            let port = port.as_str().unwrap();
            let public = !port.starts_with("127.0.0.1:");
            // Vigil's two APIs require keys (above), Grafana its admin password.
            let authenticated = matches!(name, "serve" | "ingest" | "grafana");
            assert!(
                !public || authenticated,
                "{name} publishes {port} beyond loopback without authentication"
            );
        }
    }
    let serve = service(&compose, "serve");
    assert!(env_value(serve, "VIGIL_QUERY_API_KEYS").is_some());
}

/// The body of `<name>…</name>` in the users file (first occurrence).
fn element<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{name}>")) + open.len();
    let end = start + xml[start..].find(&close).unwrap();
    &xml[start..end]
}

#[test]
fn clickhouse_users_match_vigil_and_grafana() {
    let compose = compose();
    let xml = read("docker/clickhouse/users.d/vigil.xml");
    let users = element(&xml, "users");
    let profiles = element(&xml, "profiles");
    let clickhouse = service(&compose, "clickhouse");
    let database = env_value(service(&compose, "ingest"), "VIGIL_CLICKHOUSE_DATABASE").unwrap();

    let writer = element(users, "vigil");
    assert_eq!(
        env_value(service(&compose, "ingest"), "VIGIL_CLICKHOUSE_USER").as_deref(),
        Some("vigil")
    );
    assert!(
        writer.contains(&format!("GRANT ALL ON {database}.*")),
        "{writer}"
    );

    let reader = element(users, "grafana");
    let profile = element(reader, "profile");
    let readonly = element(element(profiles, profile), "readonly");
    assert!(
        matches!(readonly, "1" | "2"),
        "grafana profile readonly = {readonly}"
    );
    let grants: Vec<&str> = reader
        .split("<query>")
        .skip(1)
        .map(|g| g.split("</query>").next().unwrap())
        .collect();
    assert_eq!(grants, [format!("GRANT SELECT ON {database}.*")]);

    for (user, body) in [("vigil", writer), ("grafana", reader)] {
        let var = body
            .split("from_env=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{user}: password not from the environment"));
        assert!(
            env_value(clickhouse, var).is_some(),
            "{user}: clickhouse service does not set {var}"
        );
    }
}

#[test]
fn grafana_provisioning_points_at_the_read_only_user_and_the_dashboards() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let datasources: Value = serde_norway::from_str(&read(
        "docker/grafana/provisioning/datasources/clickhouse.yaml",
    ))
    .unwrap();
    let source = &datasources["datasources"][0];
    let json = &source["jsonData"];
    assert_eq!(json["host"].as_str(), Some("clickhouse"));
    assert_eq!(json["protocol"].as_str(), Some("http"));
    assert_eq!(json["port"].as_u64(), Some(8123));
    assert_eq!(json["username"].as_str(), Some("grafana"));
    let database = env_value(service(&compose, "serve"), "VIGIL_CLICKHOUSE_DATABASE").unwrap();
    assert_eq!(json["defaultDatabase"].as_str(), Some(database.as_str()));
    let password = source["secureJsonData"]["password"].as_str().unwrap();
    let var = password.trim_start_matches("${").trim_end_matches('}');
    assert!(
        env_value(grafana, var).is_some(),
        "grafana does not get {var}"
    );

    let providers: Value =
        serde_norway::from_str(&read("docker/grafana/provisioning/dashboards/vigil.yaml")).unwrap();
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let mounts: Vec<&str> = grafana
        .get("volumes")
        .unwrap()
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        mounts.contains(&format!("./grafana/dashboards:{path}:ro").as_str()),
        "{mounts:?}"
    );
    let home = env_value(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH").unwrap();
    let file = home.strip_prefix(&format!("{path}/")).unwrap();
    assert!(repo_path(&format!("docker/grafana/dashboards/{file}")).exists());
}

#[test]
fn env_var_scanner_reads_clap_attributes() {
    let vars = vigil_env_vars();
    assert!(vars.contains("VIGIL_CLICKHOUSE_PASSWORD"));
    assert!(vars.iter().all(|v| v.starts_with("VIGIL_")), "{vars:?}");
}
