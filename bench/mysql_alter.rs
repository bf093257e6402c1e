//! The MySQL/MariaDB benchmark behind `bench/mysql_alter.sh`: a copying `ALTER TABLE` of a
//! large table while an application keeps writing to it, run as a plain `ALTER` and
//! safeshift's way (`-- safeshift:online-schema-change`, which runs pt-online-schema-change).
//!
//! It starts its own throwaway MariaDB (the testkit's), and for each scenario loads `accounts`
//! with N rows into a fresh database, starts a rate-limited write workload (point updates and
//! inserts, each client on its own connection; latency counted from each write's scheduled
//! start, so a stall shows as latency, not as fewer writes), waits for a baseline, runs the
//! change (`MODIFY COLUMN balance bigint NOT NULL`, which MariaDB can only do by copying the
//! table), and compares the writes scheduled while it ran with the baseline. Afterwards it
//! checks that the column changed and that every acknowledged insert is in the table.
//!
//! ```text
//! cargo run -p safeshift-bench --bin mysql_alter -- --safeshift target/debug/safeshift
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use safeshift_testkit::MariaDbServer;

const USAGE: &str =
    "usage: mysql_alter --safeshift PATH [--rows N] [--rate WRITES_PER_S] [--clients N]
                   [--baseline SECONDS] [--app-lock-wait SECONDS] [--scenarios plain,online]
--app-lock-wait sets the workload sessions' lock_wait_timeout and innodb_lock_wait_timeout
(default: the server's, 86400 s and 50 s), as an application with its own timeouts would.";

/// The change (on rows of about 150 bytes: an id, a balance and a note): a type change, which MariaDB runs only with ALGORITHM=COPY (writes wait for the
/// whole copy).
const ALTER: &str = "ALTER TABLE accounts MODIFY COLUMN balance bigint NOT NULL";

struct Args {
    safeshift: PathBuf,
    rows: u64,
    rate: u32,
    clients: u32,
    baseline: f64,
    app_lock_wait: Option<u64>,
    scenarios: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        safeshift: PathBuf::new(),
        rows: 1_000_000,
        rate: 200,
        clients: 4,
        baseline: 5.0,
        app_lock_wait: None,
        scenarios: vec!["plain".into(), "online".into()],
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or(format!("{word} needs a value"));
        let number = |text: String| {
            text.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{text}: {e}"))
        };
        match word.as_str() {
            "--safeshift" => args.safeshift = PathBuf::from(value()?),
            "--rows" => args.rows = number(value()?)?.max(1),
            "--rate" => args.rate = number(value()?)?.max(1) as u32,
            "--clients" => args.clients = number(value()?)?.max(1) as u32,
            "--baseline" => args.baseline = number(value()?)? as f64,
            "--app-lock-wait" => args.app_lock_wait = Some(number(value()?)?.max(1)),
            "--scenarios" => args.scenarios = value()?.split(',').map(String::from).collect(),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.safeshift.as_os_str().is_empty() {
        return Err("--safeshift is required".into());
    }
    if let Some(unknown) = args
        .scenarios
        .iter()
        .find(|s| !matches!(s.as_str(), "plain" | "online"))
    {
        return Err(format!("unknown scenario {unknown} (plain, online)"));
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("mysql_alter: {message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&args) {
        eprintln!("mysql_alter: {message}");
        std::process::exit(1);
    }
}

/// One write of the workload.
struct Write {
    /// Scheduled start, from the workload's start.
    scheduled: Duration,
    /// From the scheduled start to the server's answer.
    latency: Duration,
    insert: bool,
    /// The server's error code, if the write failed.
    error: Option<u16>,
}

/// The write workload: `clients` threads, each writing at its share of `rate` on a schedule.
struct Workload {
    stop: Arc<AtomicBool>,
    writes: Arc<Mutex<Vec<Write>>>,
    threads: Vec<std::thread::JoinHandle<Result<(), String>>>,
    started: Instant,
}

impl Workload {
    fn start(url: &str, args: &Args) -> Result<Workload, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let interval = Duration::from_secs_f64(f64::from(args.clients) / f64::from(args.rate));
        let mut threads = Vec::new();
        for client in 0..args.clients {
            let mut conn = mysql::Conn::new(url).map_err(|e| e.to_string())?;
            if let Some(seconds) = args.app_lock_wait {
                conn.query_drop(format!(
                    "SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
                ))
                .map_err(|e| e.to_string())?;
            }
            let (stop, writes, rows, clients) = (
                Arc::clone(&stop),
                Arc::clone(&writes),
                args.rows,
                args.clients,
            );
            threads.push(std::thread::spawn(move || {
                // Clients start spread over one interval.
                let mut next = interval.mul_f64(f64::from(client) / f64::from(clients));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let now = started.elapsed();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    let insert = n.is_multiple_of(2);
                    let sql = if insert {
                        "INSERT INTO accounts (balance, note) VALUES (1, 'written during the bench')"
                            .to_owned()
                    } else {
                        format!(
                            "UPDATE accounts SET balance = balance + 1 WHERE id = {}",
                            1 + fastrand::u64(..rows)
                        )
                    };
                    let error = match conn.query_drop(&sql) {
                        Ok(()) => None,
                        Err(mysql::Error::MySqlError(error)) => Some(error.code),
                        Err(error) => return Err(format!("workload connection: {error}")),
                    };
                    let latency = started.elapsed().saturating_sub(next);
                    writes.lock().unwrap().push(Write {
                        scheduled: next,
                        latency,
                        insert,
                        error,
                    });
                    next += interval;
                    n += 1;
                }
                Ok(())
            }));
        }
        Ok(Workload {
            stop,
            writes,
            threads,
            started,
        })
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn finish(self) -> Result<Vec<Write>, String> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread
                .join()
                .map_err(|_| "a workload thread panicked".to_owned())??;
        }
        Ok(std::mem::take(&mut *self.writes.lock().unwrap()))
    }
}

/// What one scenario measured.
struct Outcome {
    name: &'static str,
    took: Duration,
    baseline: Stats,
    during: Stats,
    column: String,
    rows_expected: u64,
    rows_found: u64,
}

#[derive(Default)]
struct Stats {
    writes: usize,
    errors: Vec<(u16, usize)>,
    p50: Duration,
    p99: Duration,
    max: Duration,
    over_1s: usize,
}

impl Stats {
    fn of<'w>(writes: impl Iterator<Item = &'w Write>) -> Stats {
        let writes: Vec<&Write> = writes.collect();
        let mut latencies: Vec<Duration> = writes.iter().map(|w| w.latency).collect();
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        let mut errors: Vec<(u16, usize)> = Vec::new();
        for code in writes.iter().filter_map(|w| w.error) {
            match errors.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => errors.push((code, 1)),
            }
        }
        Stats {
            writes: writes.len(),
            errors,
            p50: at(0.5),
            p99: at(0.99),
            max: latencies.last().copied().unwrap_or_default(),
            over_1s: latencies
                .iter()
                .filter(|l| **l > Duration::from_secs(1))
                .count(),
        }
    }

    fn error_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        let total: usize = self.errors.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|(code, n)| format!("{n}x {code}{}", error_name(*code)))
            .collect();
        format!("{total} ({})", parts.join(", "))
    }
}

fn error_name(code: u16) -> &'static str {
    match code {
        1205 => " lock wait timeout",
        1213 => " deadlock",
        _ => "",
    }
}

fn run(args: &Args) -> Result<(), String> {
    let server = MariaDbServer::start().map_err(|e| e.to_string())?;
    let mut admin = mysql::Conn::new(server.url("mysql").as_str()).map_err(|e| e.to_string())?;
    let version: String = admin
        .query_first("SELECT VERSION()")
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let tool = Command::new("pt-online-schema-change")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "pt-online-schema-change not found".into());
    println!(
        "mysql_alter benchmark: MariaDB {version} on port {} (the testkit's settings: \
         innodb_buffer_pool_size=64M, innodb_flush_log_at_trx_commit=0), {tool}",
        server.port()
    );
    println!(
        "{} rows, {} writes/s offered by {} clients (half point UPDATEs, half INSERTs), {}s baseline, \
         app lock_wait_timeout {}, {} cpus, load {}",
        args.rows,
        args.rate,
        args.clients,
        args.baseline,
        args.app_lock_wait
            .map_or("server default".to_owned(), |s| format!("{s}s")),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    println!("change: {ALTER}");
    let mut outcomes = Vec::new();
    for scenario in &args.scenarios {
        let name: &'static str = if scenario == "plain" {
            "plain ALTER"
        } else {
            "safeshift online-schema-change"
        };
        let database = format!("bench_{scenario}");
        let outcome = scenario_run(&server, &mut admin, args, &database, name);
        // The table is large: the database goes whatever happened.
        let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS {database}"));
        outcomes.push(outcome?);
    }
    println!();
    println!(
        "{:<32} {:>9} | {:>7} {:>9} {:>9} | {:>7} {:>9} {:>9} {:>9} {:>8} | errors during",
        "scenario", "took", "base n", "base p99", "base max", "n", "p50", "p99", "max", ">1s"
    );
    for o in &outcomes {
        println!(
            "{:<32} {:>8.1}s | {:>7} {:>9} {:>9} | {:>7} {:>9} {:>9} {:>9} {:>8} | {}",
            o.name,
            o.took.as_secs_f64(),
            o.baseline.writes,
            ms(o.baseline.p99),
            ms(o.baseline.max),
            o.during.writes,
            ms(o.during.p50),
            ms(o.during.p99),
            ms(o.during.max),
            o.during.over_1s,
            o.during.error_text()
        );
    }
    println!();
    for o in &outcomes {
        println!(
            "{}: balance is now {}; rows {} (loaded + acknowledged inserts: {}){}",
            o.name,
            o.column,
            o.rows_found,
            o.rows_expected,
            if o.rows_found == o.rows_expected {
                ""
            } else {
                "  <-- MISMATCH"
            }
        );
    }
    Ok(())
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

fn scenario_run(
    server: &MariaDbServer,
    admin: &mut mysql::Conn,
    args: &Args,
    database: &str,
    name: &'static str,
) -> Result<Outcome, String> {
    let fail = |e: mysql::Error| e.to_string();
    admin
        .query_drop(format!(
            "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
        ))
        .map_err(fail)?;
    let url = server.url(database);
    let mut conn = mysql::Conn::new(url.as_str()).map_err(fail)?;
    let loading = Instant::now();
    conn.query_drop(
        "CREATE TABLE accounts (id bigint PRIMARY KEY AUTO_INCREMENT, balance int NOT NULL, \
         note varchar(200) NOT NULL)",
    )
    .map_err(fail)?;
    // In slices, so no single transaction holds a million rows' undo.
    let mut loaded = 0;
    while loaded < args.rows {
        let upto = (loaded + 100_000).min(args.rows);
        conn.query_drop(format!(
            "INSERT INTO accounts (balance, note) SELECT seq % 1000, \
             CONCAT('account ', seq, ' loaded before the bench ', REPEAT('x', 100)) FROM seq_{}_to_{upto}",
            loaded + 1
        ))
        .map_err(fail)?;
        loaded = upto;
    }
    eprintln!(
        "[{name}] loaded {} rows in {:.1}s",
        args.rows,
        loading.elapsed().as_secs_f64()
    );
    let project = tempfile::tempdir().map_err(|e| e.to_string())?;
    let migrations = project.path().join("migrations");
    std::fs::create_dir(&migrations).map_err(|e| e.to_string())?;
    std::fs::write(
        migrations.join("0001_balance_bigint.sql"),
        format!(
            "-- migrate:up\n-- safeshift:online-schema-change\n{ALTER};\n\n\
             -- migrate:down\nALTER TABLE accounts MODIFY COLUMN balance int NOT NULL;\n"
        ),
    )
    .map_err(|e| e.to_string())?;

    let workload = Workload::start(&url, args)?;
    std::thread::sleep(Duration::from_secs_f64(args.baseline));
    let from = workload.elapsed();
    let started = Instant::now();
    let result = if name == "plain ALTER" {
        mysql::Conn::new(url.as_str())
            .and_then(|mut c| c.query_drop(ALTER))
            .map_err(|e| format!("the plain ALTER failed: {e}"))
    } else {
        safeshift_up(&args.safeshift, project.path(), &url, name)
    };
    let took = started.elapsed();
    let to = workload.elapsed();
    // A little more, so the writes queued behind the change are answered.
    std::thread::sleep(Duration::from_secs(2));
    let writes = workload.finish()?;
    result?;

    let baseline = Stats::of(writes.iter().filter(|w| w.scheduled < from));
    let during = Stats::of(
        writes
            .iter()
            .filter(|w| w.scheduled >= from && w.scheduled < to),
    );
    let inserted = writes
        .iter()
        .filter(|w| w.insert && w.error.is_none())
        .count() as u64;
    let column: String = conn
        .query_first(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'accounts' AND COLUMN_NAME = 'balance'",
        )
        .map_err(fail)?
        .unwrap_or_default();
    let rows_found: u64 = conn
        .query_first("SELECT COUNT(*) FROM accounts")
        .map_err(fail)?
        .unwrap_or_default();
    Ok(Outcome {
        name,
        took,
        baseline,
        during,
        column,
        rows_expected: args.rows + inserted,
        rows_found,
    })
}

/// `safeshift up` in the project, its progress shown on stderr as it goes.
fn safeshift_up(safeshift: &Path, project: &Path, url: &str, name: &str) -> Result<(), String> {
    let status = Command::new(safeshift)
        .current_dir(project)
        .args(["--database-url", url, "up"])
        .status()
        .map_err(|e| format!("{}: {e}", safeshift.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("[{name}] safeshift up failed: {status}"))
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
