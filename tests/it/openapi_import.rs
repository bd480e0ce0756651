//! `vigil import openapi` on real documents: GitHub's official description (the
//! `@octokit/openapi` npm package, about 13 MB; `scripts/test` provisions the pinned version and
//! sets `VIGIL_GITHUB_OPENAPI`), and a document fetched by URL, applied to the local stack.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::common::{kafka_brokers, unique_name};

fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIL_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("VIGIL_KAFKA_BROKERS", kafka_brokers());
    cmd
}

fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The documented example responses of `operation_id`'s JSON success response.
fn examples(doc: &Value, operation_id: &str) -> Vec<Value> {
    let deref = |v: &Value| match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(&r[1..]).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    for item in doc["paths"].as_object().unwrap().values() {
        let op = &item["get"];
        if op["operationId"] != operation_id {
            continue;
        }
        let Some((_, response)) = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(code, _)| code.starts_with('2'))
        else {
            return Vec::new();
        };
        let media = &deref(response)["content"]["application/json"];
        let mut found: Vec<Value> = media["examples"]
            .as_object()
            .map(|e| e.values().map(|x| deref(x)["value"].clone()).collect())
            .unwrap_or_default();
        found.extend(media.get("example").cloned());
        return found;
    }
    Vec::new()
}

#[test]
fn githubs_description_imports_into_valid_monitors() {
    let path = std::env::var("VIGIL_GITHUB_OPENAPI").expect(
        "VIGIL_GITHUB_OPENAPI names GitHub's OpenAPI description (api.github.com.json of the \
         @octokit/openapi npm package); scripts/test provisions it",
    );
    let dir = std::env::temp_dir().join(unique_name("it", "gh"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("github.yaml");
    let (_, stderr) = run(vigil().args(["import", "openapi", &path]).args([
        "--param",
        "owner=octocat",
        "--param",
        "repo=Hello-World",
        "--param",
        "org=github",
        "--param",
        "username=octocat",
        "--id-prefix",
        "gh-",
        "--tag",
        "github",
        "-o",
        out.to_str().unwrap(),
    ]));
    let summary = stderr.lines().next().unwrap();
    assert!(
        summary.contains(": GitHub's official OpenAPI spec + Octokit extension (OpenAPI 3.0.3): "),
        "{stderr}"
    );

    // What it wrote is a monitors file `vigil apply` accepts: every monitor, condition and
    // schema valid.
    let text = std::fs::read_to_string(&out).unwrap();
    let file = vigil_ingest::plan::parse_file("github.yaml", &text).unwrap();
    let monitors = file.monitors.unwrap();
    assert!(
        monitors.len() >= 300,
        "{} monitors\n{stderr}",
        monitors.len()
    );
    let by_id: BTreeMap<&str, &vigil_schema::MonitorSpec> =
        monitors.iter().map(|m| (m.id.as_str(), m)).collect();
    let repo = by_id["gh-repos-get"];
    assert_eq!(repo.name, "repos/get");
    assert_eq!(repo.url, "https://api.github.com/repos/octocat/Hello-World");
    assert_eq!(repo.tags, ["repos", "github"]);
    assert_eq!(
        repo.assertions,
        [
            "[STATUS] == 200",
            "[HEADER].content-type == pat(application/json*)",
            "[BODY] matches schema"
        ]
    );
    let schema = repo.body_schema.as_ref().unwrap();
    assert_eq!(schema["$ref"], "#/$defs/full-repository");
    assert!(schema["$defs"]["simple-user"].is_object(), "{schema}");
    // A required query parameter without a value, named with the fix.
    assert!(
        stderr.contains(
            "search/repos (GET /search/repositories): query parameter `q` is required and has \
             no example or default; give it a value (--param q=VALUE)"
        ),
        "{stderr}"
    );
    assert!(!by_id.contains_key("gh-search-repos"));

    // GitHub's own example responses, held to the imported schemas, give the verdicts an
    // independent implementation of OpenAPI's schema dialect gives on the original document
    // (openapi-schema-validator; `scripts/test` provisions it as VIGIL_OPENAPI_ORACLE).
    let python = std::env::var("VIGIL_OPENAPI_ORACLE").expect(
        "VIGIL_OPENAPI_ORACLE names a python with openapi-schema-validator; scripts/test \
         provisions it (scripts/requirements-openapi-oracle.txt)",
    );
    let oracle = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/openapi_import/oracle.py"
        ))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        oracle.status.success(),
        "{}",
        String::from_utf8_lossy(&oracle.stderr)
    );
    let mut expected: BTreeMap<(String, usize), bool> = BTreeMap::new();
    for line in String::from_utf8(oracle.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["operation"].as_str().unwrap().to_owned(),
            v["example"].as_u64().unwrap() as usize,
        );
        expected.insert(key, v["valid"].as_bool().unwrap());
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (mut compared, mut valid, mut differ) = (0, 0, Vec::new());
    for spec in &monitors {
        let Some(schema) = &spec.body_schema else {
            continue;
        };
        let validator = vigil_schema::compile_body_schema(schema).unwrap();
        for (i, example) in examples(&doc, &spec.name).iter().enumerate() {
            let ours = validator.is_valid(example);
            let theirs = expected[&(spec.name.clone(), i)];
            compared += 1;
            valid += usize::from(ours);
            if ours != theirs {
                let why = validator
                    .validate(example)
                    .err()
                    .map(|e| format!("{}: {e}", e.instance_path()))
                    .unwrap_or_default();
                differ.push(format!(
                    "{} example {i}: ours {ours}, theirs {theirs} {why}",
                    spec.name
                ));
            }
        }
    }
    eprintln!("{compared} documented examples compared, {valid} valid");
    assert!(compared >= 250, "{compared} compared");
    assert!(differ.is_empty(), "verdicts differ:\n{}", differ.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Served by a local server, the document's relative server URL resolves against where it was
/// fetched; `--apply` writes the monitors to the stack, and applying again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_fetched_by_url_is_applied() {
    let document = include_str!("../../ingest/tests/fixtures/openapi/petstore-3.0.yaml")
        .replace("http://petstore.swagger.io/v1", "/v1");
    let app = axum::Router::new().route(
        "/openapi.yaml",
        axum::routing::get(move || {
            let document = document.clone();
            async move { ([("content-type", "application/yaml")], document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let prefix = unique_name("it", "import");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!("[ingest.egress]\nallow = [\"127.0.0.1:{}\"]\n", addr.port()),
    )
    .unwrap();
    let url = format!("http://{addr}/openapi.yaml");
    let cli = |args: &[&str]| {
        let mut cmd = vigil();
        cmd.env("VIGIL_CONFIG", &config)
            .env("VIGIL_TOPIC_PREFIX", &prefix)
            .args(args);
        tokio::task::spawn_blocking(move || run(&mut cmd))
    };
    let apply = ["import", "openapi", &url, "--apply", "--param", "petId=7"];
    let (first, stderr) = cli(&apply).await.unwrap();
    assert!(
        stderr.starts_with(&format!(
            "{url}: Swagger Petstore (OpenAPI 3.0.0): 2 monitor(s)"
        )),
        "{stderr}"
    );
    assert!(first.contains("+ create listpets"), "{first}");
    assert!(first.contains("+ create showpetbyid"), "{first}");
    assert!(
        first.contains("Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged."),
        "{first}"
    );
    let (again, _) = cli(&apply).await.unwrap();
    assert!(
        again.contains("No changes. 2 monitor(s) up to date."),
        "{again}"
    );
    // What is on the topic, as `vigil export` reads it back.
    let (exported, _) = cli(&["export"]).await.unwrap();
    let file = vigil_ingest::plan::parse_file("export", &exported).unwrap();
    let monitors = file.monitors.unwrap();
    let show = monitors.iter().find(|m| m.id == "showpetbyid").unwrap();
    assert_eq!(show.url, format!("http://{addr}/v1/pets/7"));
    assert_eq!(
        show.body_schema.as_ref().unwrap()["$defs"]["Pet"]["required"],
        serde_json::json!(["id", "name"])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
