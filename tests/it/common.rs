//! Helpers shared by the integration tests: endpoints, clients, unique names.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::Client;
use clickhouse::sql::Identifier;
use rdkafka::ClientConfig;

/// Kafka bootstrap servers of the local stack.
pub(crate) fn kafka_brokers() -> String {
    std::env::var("VIGIL_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// ClickHouse HTTP endpoint of the local stack.
pub(crate) fn clickhouse_url() -> String {
    std::env::var("VIGIL_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// Makes a panic on any thread that is not a test's own (a server task, a spawned worker, a
/// stream under a response body) abort the test process, so it fails the run instead of being
/// printed and swallowed by a task boundary. Test threads carry the test's name; tokio's and
/// other background threads do not contain `::`. Installed once, by every helper below.
pub(crate) fn fail_on_background_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>");
            let test_thread = name.contains("::") || name == "main";
            if !test_thread {
                eprintln!("panic on background thread {name:?}: failing the test run");
                std::process::abort();
            }
        }));
    });
}

/// A name no other test (or earlier run) uses: `{prefix}_{test}_{time}_{n}`, lowercase.
pub(crate) fn unique_name(prefix: &str, test: &str) -> String {
    fail_on_background_panics();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}_{test}_{millis}_{}_{n}", std::process::id())
}

/// A client with the crate's default settings (LZ4 compression, schema validation).
pub(crate) fn clickhouse() -> Client {
    fail_on_background_panics();
    Client::default().with_url(clickhouse_url())
}

/// A database of this test's own, dropped by [`TestDb::drop_database`].
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) client: Client,
}

impl TestDb {
    /// Creates a fresh, empty database named after the test.
    pub(crate) async fn new(test: &str) -> Self {
        let name = unique_name("it", test);
        clickhouse()
            .query("CREATE DATABASE ?")
            .bind(Identifier(&name))
            .execute()
            .await
            .expect("create test database (is the stack up? `scripts/stack up`)");
        let client = clickhouse().with_database(&name);
        Self { name, client }
    }

    /// An unused name for a database that does not exist yet.
    pub(crate) fn fresh_name(test: &str) -> String {
        unique_name("it", test)
    }

    pub(crate) async fn drop_database(self) {
        drop_database(&self.name).await;
    }
}

pub(crate) async fn drop_database(name: &str) {
    clickhouse()
        .query("DROP DATABASE IF EXISTS ?")
        .bind(Identifier(name))
        .execute()
        .await
        .unwrap();
}

/// Client configuration for the local broker.
pub(crate) fn kafka_config() -> ClientConfig {
    fail_on_background_panics();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka_brokers());
    config
}

/// Shows the services' logs in failing tests' output (`RUST_LOG`, default `warn`).
pub(crate) fn init_logs() {
    fail_on_background_panics();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    drop(installed);
}

/// `vigil` as a child process of a test: its own topic prefix, database and config file,
/// stderr appended to `vigil.log` in its directory, killed on drop.
pub(crate) struct VigilProcess {
    /// The directory of the config file and the log.
    pub(crate) dir: std::path::PathBuf,
    prefix: String,
    db_name: String,
    env: Vec<(String, String)>,
}

impl VigilProcess {
    /// A directory named after `prefix` holding `config` as `vigil.toml`.
    pub(crate) fn new(prefix: &str, db_name: &str, config: &str) -> Self {
        let dir = std::env::temp_dir().join(prefix);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vigil.toml"), config).unwrap();
        Self {
            dir,
            prefix: prefix.to_owned(),
            db_name: db_name.to_owned(),
            env: Vec::new(),
        }
    }

    /// Also sets `name` in every command's environment.
    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `vigil <args>`.
    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil"));
        c.args(args)
            .env("VIGIL_CONFIG", self.dir.join("vigil.toml"))
            .env("VIGIL_TOPIC_PREFIX", &self.prefix)
            .env("VIGIL_CLICKHOUSE_DATABASE", &self.db_name)
            .env("VIGIL_KAFKA_BROKERS", kafka_brokers())
            .env("VIGIL_CLICKHOUSE_URL", clickhouse_url())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("vigil.log"))
                    .map_or_else(|_| std::process::Stdio::null(), std::process::Stdio::from),
            )
            .kill_on_drop(true);
        c
    }
}
